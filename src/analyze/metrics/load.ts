/**
 * Per-expert load and imbalance of one layer of a routing trace.
 *
 * load_e = number of slots routed to id e over all tokens (every chosen expert counts 1, whatever its gate),
 * for e in 0..numIds−1 (zero-computation ids included; they are routing choices too).
 * With mean μ = (1/N)·Σ_e load_e and population standard deviation σ = sqrt((1/N)·Σ_e (load_e − μ)²) over the
 * N = numExperts routed FFN experts:
 *   imbalance (max/mean) = max_e load_e / μ      (1 = perfectly balanced, N = everything on one expert)
 *   coefficient of variation CV = σ / μ          (0 = perfectly balanced)
 * Both are NaN when no FFN expert received any token.
 */
import type { LayerTrace } from '../routing-trace.js';

/** Slot counts per id (length numIds). */
export function expertLoad(l: LayerTrace): number[] {
  const load = new Array<number>(l.numIds).fill(0);
  for (const e of l.experts) load[e]! += 1;
  return load;
}

/** Load as fractions of all slots (sums to 1; all zeros for an empty layer). */
export function loadFractions(l: LayerTrace): number[] {
  const load = expertLoad(l);
  const total = load.reduce((a, b) => a + b, 0);
  return load.map((v) => (total ? v / total : 0));
}

export interface Imbalance {
  maxOverMean: number;
  cv: number;
}

/** Imbalance of a load vector over its first `n` entries (default: all). */
export function imbalanceOf(load: readonly number[], n = load.length): Imbalance {
  const xs = load.slice(0, n);
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  if (!(mean > 0)) return { maxOverMean: NaN, cv: NaN };
  const variance = xs.reduce((a, v) => a + (v - mean) ** 2, 0) / xs.length;
  return { maxOverMean: Math.max(...xs) / mean, cv: Math.sqrt(variance) / mean };
}

/** Imbalance of a layer over its routed FFN experts. */
export function loadImbalance(l: LayerTrace): Imbalance {
  return imbalanceOf(expertLoad(l), l.numExperts);
}
