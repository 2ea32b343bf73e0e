/** Views, slices, concatenation, gathers and scatters (the MoE dispatch is built from these). */
import { Var } from '../var.js';
const todo = (n: string): never => { throw new Error(`autograd op ${n} not implemented yet`); };

/** Same data, new shape (shares the buffer; the gradient is reshaped back). */
export function reshape(a: Var, shape: readonly number[]): Var { return todo('reshape' + a.op + shape.length); }
/** Columns [start, end) of the last dim → [...leading, end − start]. */
export function sliceCols(a: Var, start: number, end: number): Var { return todo('sliceCols' + a.op + start + end); }
/** Concatenate along the last dim (equal row counts). */
export function concatCols(parts: readonly Var[]): Var { return todo('concatCols' + parts.length); }
/** Rows [start, end) of the first dim. */
export function sliceRows(a: Var, start: number, end: number): Var { return todo('sliceRows' + a.op + start + end); }
/** Concatenate along the first dim (equal trailing shapes). */
export function concatRows(parts: readonly Var[]): Var { return todo('concatRows' + parts.length); }
/** out[i, :] = a[idx[i], :] for a viewed as [rows, cols]. Backward: scatter-add. */
export function gatherRows(a: Var, idx: Int32Array): Var { return todo('gatherRows' + a.op + idx.length); }
/** out[rows, cols] with out[idx[i], :] += a[i, :] (zeros elsewhere). Backward: gather. */
export function scatterAddRows(a: Var, idx: Int32Array, rows: number): Var { return todo('scatterAddRows' + a.op + idx.length + rows); }
/** out[i] = a.data[idx[i]] over the flattened a → shape [idx.length]. */
export function gatherElements(a: Var, idx: Int32Array): Var { return todo('gatherElements' + a.op + idx.length); }
/** a[rows, cols] · s[rows] (s broadcast along each row). Gradients to both. */
export function scaleRows(a: Var, s: Var): Var { return todo('scaleRows' + a.op + s.op); }
/** [R, C] → [C, R]. */
export function transpose(a: Var): Var { return todo('transpose' + a.op); }
