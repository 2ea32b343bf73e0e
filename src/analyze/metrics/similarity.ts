/**
 * Routing similarity of two texts, per MoE layer, from their expert-load distributions p and q
 * (src/analyze/metrics/load.ts `loadFractions`, over the layer's numIds ids):
 *   jsSimilarity = 1 − JSD(p, q), JSD(p, q) = ½·KL(p‖m) + ½·KL(q‖m), m = ½(p + q), logs base 2, so JSD ∈ [0, 1]
 *                  and the similarity is 1 for identical distributions and 0 for disjoint supports;
 *   cosine       = p·q / (‖p‖‖q‖).
 * Both NaN when a layer of either trace has no slots. Layers are matched by position in the traces.
 */
import type { RoutingTrace } from '../routing-trace.js';
import { loadFractions } from './load.js';

export function jsDivergence(p: readonly number[], q: readonly number[]): number {
  let d = 0;
  for (let i = 0; i < p.length; i++) {
    const a = p[i]!;
    const b = q[i] ?? 0;
    const m = (a + b) / 2;
    if (a > 0) d += 0.5 * a * Math.log2(a / m);
    if (b > 0) d += 0.5 * b * Math.log2(b / m);
  }
  return Math.min(1, Math.max(0, d));
}

export function cosine(p: readonly number[], q: readonly number[]): number {
  let dot = 0, pp = 0, qq = 0;
  for (let i = 0; i < p.length; i++) { dot += p[i]! * (q[i] ?? 0); pp += p[i]! ** 2; qq += (q[i] ?? 0) ** 2; }
  return pp > 0 && qq > 0 ? dot / Math.sqrt(pp * qq) : NaN;
}

export interface LayerSimilarity {
  layer: number;
  jsSimilarity: number;
  cosine: number;
}

export function routingSimilarity(a: RoutingTrace, b: RoutingTrace): LayerSimilarity[] {
  if (a.layers.length !== b.layers.length) throw new Error(`similarity: ${a.layers.length} vs ${b.layers.length} MoE layers`);
  return a.layers.map((la, i) => {
    const lb = b.layers[i]!;
    const p = loadFractions(la);
    const q = loadFractions(lb);
    const empty = !p.some((v) => v > 0) || !q.some((v) => v > 0);
    return { layer: la.layer, jsSimilarity: empty ? NaN : 1 - jsDivergence(p, q), cosine: empty ? NaN : cosine(p, q) };
  });
}
