/**
 * Expert capacity with token dropping (GShard, Lepikhin et al. 2020, arXiv:2006.16668 §2.2; Switch Transformers,
 * Fedus et al. 2021, arXiv:2101.03961 §2.2; batch-prioritised routing from Riquelme et al., "Scaling Vision with
 * Sparse Mixture of Experts", 2021, arXiv:2106.05974 §4.1).
 *   C = ⌈cf · T · k / E⌉ slots per routed FFN expert; slots beyond C are dropped (the token keeps its residual and
 *   its other experts). Dropless routing is simply not applying this.
 * Priority rule — which slots of an over-full expert survive:
 *   'position' (GShard/Switch): all first choices (rank 0) before any second choice, and within a rank earlier tokens
 *              first. A token's top choice is therefore never displaced by someone else's second choice.
 *   'score'    (BPR): slots by descending router score (gate), ties by rank then token.
 * Zero-computation experts (ids ≥ E) have no capacity limit and are never dropped.
 */

export type CapacityPriority = 'position' | 'score';

export function expertCapacity(T: number, k: number, E: number, cf: number): number {
  if (!(cf > 0)) throw new Error(`capacity factor must be > 0, got ${cf}`);
  return Math.ceil((cf * T * k) / E);
}

export interface CapacitySlots {
  tokens: Int32Array;
  experts: Int32Array;
  /** Rank of the slot among its token's choices (0 = first choice). */
  ranks: Int32Array;
  /** Router score of the slot (used by 'score' priority). */
  scores: ArrayLike<number>;
}

/** Indices of the slots that survive, in their original order. */
export function applyCapacity(s: CapacitySlots, E: number, C: number, priority: CapacityPriority = 'position'): Int32Array {
  const n = s.experts.length;
  const order = Array.from({ length: n }, (_, i) => i);
  const byPosition = (a: number, b: number): number => s.ranks[a]! - s.ranks[b]! || s.tokens[a]! - s.tokens[b]! || a - b;
  order.sort(priority === 'score' ? (a, b) => s.scores[b]! - s.scores[a]! || byPosition(a, b) : byPosition);
  const used = new Int32Array(E);
  const keep = new Uint8Array(n);
  for (const i of order) {
    const e = s.experts[i]!;
    if (e >= E) { keep[i] = 1; continue; }
    if (used[e]! < C) { used[e]!++; keep[i] = 1; }
  }
  const kept: number[] = [];
  for (let i = 0; i < n; i++) if (keep[i]) kept.push(i);
  return Int32Array.from(kept);
}
