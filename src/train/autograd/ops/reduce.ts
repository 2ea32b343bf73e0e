/** Reductions. */
import { Var } from '../var.js';
const todo = (n: string): never => { throw new Error(`autograd op ${n} not implemented yet`); };

/** Σ all elements → scalar [1]. */
export function sum(a: Var): Var { return todo('sum' + a.op); }
/** mean of all elements → scalar [1]. */
export function mean(a: Var): Var { return todo('mean' + a.op); }
/** Σ over the last dim → [...leading, 1]... returned with shape [rows]. */
export function sumCols(a: Var): Var { return todo('sumCols' + a.op); }
/** mean over rows (first dims) → [cols]. */
export function meanRows(a: Var): Var { return todo('meanRows' + a.op); }
/** log Σ exp over the last dim (stable) → [rows]. */
export function logSumExp(a: Var): Var { return todo('logSumExp' + a.op); }
