/** Embedding lookup: rows of W [V, D] for token ids; backward scatter-adds into W's gradient. */
import { Var } from '../var.js';
const todo = (n: string): never => { throw new Error(`autograd op ${n} not implemented yet`); };

export function embedding(w: Var, ids: ArrayLike<number>): Var { return todo('embedding' + w.op + ids.length); }
