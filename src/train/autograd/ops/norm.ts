/** Normalisations with learned scales. */
import { Var } from '../var.js';
const todo = (n: string): never => { throw new Error(`autograd op ${n} not implemented yet`); };

/** RMSNorm over consecutive groups of w.size elements (per-head norms included): x / sqrt(mean x² + eps) · w. */
export function rmsNorm(x: Var, w: Var, eps: number): Var { return todo('rmsNorm' + x.op + w.op + eps); }
/** LayerNorm over rows of w.size elements, optional bias. */
export function layerNorm(x: Var, w: Var, b: Var | undefined, eps: number): Var { return todo('layerNorm' + x.op + w.op + String(b) + eps); }
