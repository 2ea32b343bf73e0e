/**
 * Segment Routing best Performance (SRP), from Liang et al. 2025, "Not All Models Suit Expert Offloading: On Local
 * Routing Consistency of Mixture-of-Expert Models" (arXiv:2505.16056), as computed by the authors' code
 * (github.com/ljcleo/moe-lrc, src/30_srp_calc.py + 31_srp_refine.py, layer level, without the bootstrap CIs).
 *
 * For one layer with routed experts e ∈ 0..E−1 (zero-computation ids ≥ E are ignored: they have no weights to
 * offload), let a_{t,e} = 1 if token t is routed to e. For a segment length m, take every segment of m consecutive
 * tokens s = [i, i+m), i = 0..T−m (sliding, overlapping), and c_{s,e} = Σ_{t∈s} a_{t,e}.
 * A segment-level router with threshold p serves the whole segment with the fixed expert group
 * G_s(p) = {e : c_{s,e} ≥ p}, i.e. it "predicts" e active on all m tokens of s. Over all segments and experts:
 *   matched(p)   = Σ_s Σ_{e∈G_s(p)} c_{s,e}      (true activations the group covers)
 *   predicted(p) = m · Σ_s |G_s(p)|              (activations the group claims)
 *   actual       = Σ_s Σ_e c_{s,e}
 *   F1(p)        = 2·matched(p) / (predicted(p) + actual)
 *   SRP(m)       = max_{p ∈ 0..m} F1(p)
 * One threshold p is shared by all experts and segments of the layer (the paper's layer-level SRP). SRP = 1 exactly
 * when every segment uses the same experts on all its tokens; higher = more local routing consistency.
 * NaN when T < m or the layer has no activations.
 */
import type { LayerTrace } from '../routing-trace.js';

export interface SrpResult {
  segLen: number;
  srp: number;
  /** The best threshold p. */
  threshold: number;
}

/** Per-token routed-FFN-expert indicator rows, as expert lists. */
export function ffnRequests(l: LayerTrace): number[][] {
  const T = l.offsets.length - 1;
  const out: number[][] = [];
  for (let t = 0; t < T; t++) {
    const r: number[] = [];
    for (let s = l.offsets[t]!; s < l.offsets[t + 1]!; s++) {
      const e = l.experts[s]!;
      if (e < l.numExperts && !r.includes(e)) r.push(e);
    }
    out.push(r);
  }
  return out;
}

export function segmentRoutingBestPerformance(l: LayerTrace, m: number): SrpResult {
  const T = l.offsets.length - 1;
  const E = l.numExperts;
  if (!Number.isInteger(m) || m < 1) throw new Error(`SRP: segment length must be a positive integer, got ${m}`);
  if (T < m) return { segLen: m, srp: NaN, threshold: -1 };
  const req = ffnRequests(l);
  // hist[c] = number of (segment, expert) pairs with count c.
  const hist = new Float64Array(m + 1);
  const count = new Int32Array(E);
  for (let t = 0; t < m; t++) for (const e of req[t]!) count[e]! += 1;
  for (let i = 0; ; i++) {
    for (let e = 0; e < E; e++) hist[count[e]!]! += 1;
    if (i + m >= T) break;
    for (const e of req[i]!) count[e]! -= 1;
    for (const e of req[i + m]!) count[e]! += 1;
  }
  let actual = 0;
  for (let c = 1; c <= m; c++) actual += c * hist[c]!;
  if (actual === 0) return { segLen: m, srp: NaN, threshold: -1 };
  let best = -1;
  let bestP = 0;
  let matched = 0;
  let groups = 0;
  for (let p = m; p >= 0; p--) {
    matched += p * hist[p]!;
    groups += hist[p]!;
    const f1 = (2 * matched) / (m * groups + actual);
    if (f1 > best) { best = f1; bestP = p; }
  }
  return { segLen: m, srp: best, threshold: bestP };
}

/** Segment lengths 1, 2, 4, … up to min(maxLen, T). */
export function defaultSegmentLengths(T: number, maxLen = 256): number[] {
  const out: number[] = [];
  for (let m = 1; m <= Math.min(T, maxLen); m *= 2) out.push(m);
  return out;
}
