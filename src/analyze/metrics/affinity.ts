/**
 * Inter-layer expert affinity: A[i][j] = P(expert j at layer l+1 | expert i at layer l), estimated from the same
 * token positions of two consecutive MoE layers of a trace.
 *
 * Every pair of slots counts once: n_ij = Σ_t Σ_{a ∈ S_l(t)} Σ_{b ∈ S_{l+1}(t)} [e_a = i]·[e_b = j], and
 * A[i][j] = n_ij / Σ_j' n_ij'. Each row with any count sums to 1; a row of an expert never chosen at layer l is all
 * zeros. Rows cover layer l's numIds ids, columns layer l+1's.
 */
import type { LayerTrace, RoutingTrace } from '../routing-trace.js';

export function affinityCounts(a: LayerTrace, b: LayerTrace): number[][] {
  const T = a.offsets.length - 1;
  if (b.offsets.length - 1 !== T) throw new Error('affinity: layers cover different numbers of tokens');
  const n = Array.from({ length: a.numIds }, () => new Array<number>(b.numIds).fill(0));
  for (let t = 0; t < T; t++) {
    for (let s = a.offsets[t]!; s < a.offsets[t + 1]!; s++) {
      const row = n[a.experts[s]!]!;
      for (let u = b.offsets[t]!; u < b.offsets[t + 1]!; u++) row[b.experts[u]!]! += 1;
    }
  }
  return n;
}

export function affinityMatrix(a: LayerTrace, b: LayerTrace): number[][] {
  return affinityCounts(a, b).map((row) => {
    const s = row.reduce((x, y) => x + y, 0);
    return row.map((v) => (s ? v / s : 0));
  });
}

/** One matrix per adjacent pair of MoE layers in the trace (layers[i] → layers[i+1]). */
export function traceAffinities(tr: RoutingTrace): { from: number; to: number; matrix: number[][] }[] {
  const out: { from: number; to: number; matrix: number[][] }[] = [];
  for (let i = 0; i + 1 < tr.layers.length; i++) {
    out.push({ from: tr.layers[i]!.layer, to: tr.layers[i + 1]!.layer, matrix: affinityMatrix(tr.layers[i]!, tr.layers[i + 1]!) });
  }
  return out;
}
