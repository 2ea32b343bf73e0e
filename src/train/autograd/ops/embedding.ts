/** Embedding lookup: rows of W [V, D] for token ids (a row gather whose backward scatter-adds into W's gradient). */
import type { Var } from '../var.js';
import { gatherRows } from './shape.js';

/** → [ids.length, D]; ids must be integers in [0, V). */
export function embedding(w: Var, ids: ArrayLike<number>): Var {
  if (w.shape.length !== 2) throw new Error(`embedding: W must be [V, D], got [${w.shape.join(', ')}]`);
  const V = w.shape[0]!;
  const rows = new Int32Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (!(id >= 0 && id < V) || !Number.isInteger(id)) throw new Error(`embedding: token id ${id} at ${i} outside [0, ${V})`);
    rows[i] = id;
  }
  return gatherRows(w, rows);
}
