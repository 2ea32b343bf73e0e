/**
 * Dispatch: sort the T·k token slots by expert (counting sort), so each expert sees one contiguous group of rows.
 * Stable: within an expert, slots keep token order. This is the permutation MegaBlocks / vLLM's moe_align do.
 */
import type { Routing } from './routers/router.js';

export interface Dispatch {
  /** Slots routed to each expert [E]. */
  counts: Int32Array;
  /** Start of each expert's group in `order` [E + 1]. */
  offsets: Int32Array;
  /** Slot ids (t·k + j) sorted by expert [T·k]. */
  order: Int32Array;
}

export function dispatch(r: Routing): Dispatch {
  const n = r.T * r.k;
  const counts = new Int32Array(r.E);
  for (let s = 0; s < n; s++) {
    const e = r.experts[s]!;
    if (e < 0 || e >= r.E) throw new Error(`router chose expert ${e} of ${r.E}`);
    counts[e]!++;
  }
  const offsets = new Int32Array(r.E + 1);
  for (let e = 0; e < r.E; e++) offsets[e + 1] = offsets[e]! + counts[e]!;
  const fill = offsets.slice(0, r.E);
  const order = new Int32Array(n);
  for (let s = 0; s < n; s++) order[fill[r.experts[s]!]!++] = s;
  return { counts, offsets, order };
}
