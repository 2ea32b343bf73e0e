/**
 * Elementwise ops. Binary ops accept equal sizes, or `b` broadcast over the leading dims of `a`
 * (b.size divides a.size and b matches a's trailing elements: bias-style), or a scalar Var (size 1).
 */
import { Var } from '../var.js';
const todo = (n: string): never => { throw new Error(`autograd op ${n} not implemented yet`); };

export function add(a: Var, b: Var): Var { return todo('add' + a.op + b.op); }
export function sub(a: Var, b: Var): Var { return todo('sub' + a.op + b.op); }
export function mul(a: Var, b: Var): Var { return todo('mul' + a.op + b.op); }
/** a · s for a constant number s. */
export function scale(a: Var, s: number): Var { return todo('scale' + a.op + s); }
/** a + s for a constant number s. */
export function addScalar(a: Var, s: number): Var { return todo('addScalar' + a.op + s); }
export function silu(a: Var): Var { return todo('silu' + a.op); }
export function sigmoid(a: Var): Var { return todo('sigmoid' + a.op); }
export function relu(a: Var): Var { return todo('relu' + a.op); }
export function tanh(a: Var): Var { return todo('tanh' + a.op); }
/** Exact (erf) GELU. */
export function gelu(a: Var): Var { return todo('gelu' + a.op); }
export function exp(a: Var): Var { return todo('exp' + a.op); }
/** Natural log (inputs must be > 0). */
export function log(a: Var): Var { return todo('log' + a.op); }
export function square(a: Var): Var { return todo('square' + a.op); }
/** |a| (subgradient 0 at 0). */
export function abs(a: Var): Var { return todo('abs' + a.op); }
/** act(gate) · up for 'silu' | 'gelu' | 'gpt_oss' (clamped: (clamp(up,±L)+1)·g·σ(αg), g = min(gate, L)). */
export function gatedAct(kind: 'silu' | 'gelu' | 'gpt_oss', gate: Var, up: Var, opts?: { alpha: number; limit: number }): Var {
  return todo('gatedAct' + kind + gate.op + up.op + String(opts));
}
