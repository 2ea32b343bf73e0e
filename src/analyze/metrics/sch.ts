/**
 * Segment Cache best Hit rate (SCH), from Liang et al. 2025 (arXiv:2505.16056), following the authors' code
 * (github.com/ljcleo/moe-lrc, src/41_sch_calc.py), layer level, without the bootstrap CIs.
 *
 * A cache holds C of a layer's routed experts (ids ≥ E, zero-computation experts, are never requested). Tokens are
 * processed in order; the experts of token t are requested one after another, and a request is a hit if the expert
 * is cached. The cache policy sees the next m tokens (the "segment"): at token t, fut(e) = number of requests for e
 * among tokens [t, t+m) not yet served. After serving expert x (fut(x) −= 1, last(x) = now), a missing x is inserted;
 * if the cache is full, the cached expert with the smallest (fut(y), last(y)) is evicted (fewest upcoming uses in
 * the segment, then least recently used). m = 1 is plain LRU; larger m lets the cache use more future information.
 *   SCH(m, C) = hits / requests.
 * Cold start (as in the reference code): a first-ever request for an expert while the cache still has a free slot
 * counts as a hit (that slot could have held it from the start), so SCH(m, C ≥ E) = 1.
 * Assumption: experts requested by one token are served in slot order (the reference serves them in its stored
 * order). NaN when the layer has no requests.
 */
import type { LayerTrace } from '../routing-trace.js';
import { ffnRequests } from './srp.js';

export function segmentCacheHitRate(l: LayerTrace, m: number, C: number): number {
  if (!Number.isInteger(m) || m < 1) throw new Error(`SCH: segment length must be a positive integer, got ${m}`);
  if (!Number.isInteger(C) || C < 1) throw new Error(`SCH: cache size must be a positive integer, got ${C}`);
  return cacheHitRate(ffnRequests(l), l.numExperts, m, C);
}

/** SCH over precomputed per-token request lists (experts 0..E−1). */
export function cacheHitRate(req: readonly (readonly number[])[], E: number, m: number, C: number): number {
  const T = req.length;
  const fut = new Int32Array(E);
  for (let t = 0; t < Math.min(m, T); t++) for (const e of req[t]!) fut[e]! += 1;
  const cached = new Uint8Array(E);
  const seen = new Uint8Array(E);
  const last = new Float64Array(E).fill(-1);
  const slots: number[] = [];
  let now = 0;
  let hits = 0;
  let total = 0;
  for (let t = 0; t < T; t++) {
    for (const x of req[t]!) {
      total++;
      if (cached[x] || (!seen[x] && slots.length < C)) hits++;
      seen[x] = 1;
      fut[x]! -= 1;
      last[x] = now++;
      if (cached[x]) continue;
      if (slots.length === C) {
        let vi = 0;
        for (let i = 1; i < slots.length; i++) {
          const a = slots[i]!;
          const v = slots[vi]!;
          if (fut[a]! < fut[v]! || (fut[a] === fut[v] && last[a]! < last[v]!)) vi = i;
        }
        cached[slots[vi]!] = 0;
        slots[vi] = x;
      } else slots.push(x);
      cached[x] = 1;
    }
    if (t + m < T) for (const e of req[t + m]!) fut[e]! += 1;
  }
  return total ? hits / total : NaN;
}

/** SCH for every (segment length, cache size) pair: out[i][j] = SCH(segLens[i], cacheSizes[j]). */
export function schGrid(l: LayerTrace, segLens: readonly number[], cacheSizes: readonly number[]): number[][] {
  const req = ffnRequests(l);
  return segLens.map((m) => cacheSizes.map((C) => cacheHitRate(req, l.numExperts, m, C)));
}

/** Cache sizes 1..E when E ≤ 16, else k, 2k, 4k, … and E (k = most experts any token used). */
export function defaultCacheSizes(l: LayerTrace): number[] {
  const E = l.numExperts;
  if (E <= 16) return Array.from({ length: E }, (_, i) => i + 1);
  let k = 1;
  for (let t = 0; t + 1 < l.offsets.length; t++) k = Math.max(k, l.offsets[t + 1]! - l.offsets[t]!);
  const out: number[] = [];
  for (let c = k; c < E; c *= 2) out.push(c);
  out.push(E);
  return out;
}
