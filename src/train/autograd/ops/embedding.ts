/** Embedding lookup: rows of W [V, D] for token ids; backward scatter-adds into W's gradient. */
import { Var, alloc, result } from '../var.js';

/** → [ids.length, D]. */
export function embedding(w: Var, ids: ArrayLike<number>): Var {
  if (w.shape.length !== 2) throw new Error(`embedding: W must be [V, D], got [${w.shape.join(', ')}]`);
  const Vn = w.shape[0]!;
  const D = w.shape[1]!;
  const n = ids.length;
  const rows = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const id = ids[i]!;
    if (!(id >= 0 && id < Vn) || !Number.isInteger(id)) throw new Error(`embedding: token id ${id} at ${i} outside [0, ${Vn})`);
    rows[i] = id;
  }
  const W = w.data;
  const out = alloc(W, n * D);
  for (let i = 0; i < n; i++) { const s = rows[i]! * D; out.set(W.subarray(s, s + D), i * D); }
  return result('embedding', out, [n, D], [w], (o) => {
    const dy = o.grad!;
    const g = w.g();
    for (let i = 0; i < n; i++) {
      const gb = rows[i]! * D;
      const db = i * D;
      for (let d = 0; d < D; d++) g[gb + d]! += dy[db + d]!;
    }
  });
}
