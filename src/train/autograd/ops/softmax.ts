/** Softmax family and the LM loss. */
import { Var } from '../var.js';
const todo = (n: string): never => { throw new Error(`autograd op ${n} not implemented yet`); };

/** Softmax over the last dim. */
export function softmax(a: Var): Var { return todo('softmax' + a.op); }
/** log-softmax over the last dim. */
export function logSoftmax(a: Var): Var { return todo('logSoftmax' + a.op); }
/**
 * Mean cross-entropy of logits [T, V] against targets (−1 = ignore) → scalar. Fused and stable.
 */
export function crossEntropy(logits: Var, targets: Int32Array): Var { return todo('crossEntropy' + logits.op + targets.length); }
