/**
 * Routing entropies of one layer, in bits.
 *
 * Gate entropy (per token t with slots S_t and gates g_s): p_s = |g_s| / Σ_{s∈S_t} |g_s|, H_t = −Σ_s p_s·log2 p_s
 * (0 for a token with a single slot, log2 k for k equal gates); tokens with no slot or all-zero gates are skipped.
 * `meanGateEntropy` = mean of H_t over the remaining tokens (NaN if none).
 *
 * Load entropy: with q_e = load_e / Σ load (src/analyze/metrics/load.ts, over all numIds ids),
 * H_load = −Σ_e q_e·log2 q_e (0 when every slot goes to one expert, log2 numIds when uniform);
 * `normalisedLoadEntropy` = H_load / log2 numIds (1 = uniform; NaN when numIds = 1 or there are no slots).
 */
import type { LayerTrace } from '../routing-trace.js';
import { loadFractions } from './load.js';

/** Shannon entropy in bits of a distribution (entries ≥ 0 summing to 1; zeros contribute 0). */
export function entropyBits(p: readonly number[]): number {
  let h = 0;
  for (const v of p) if (v > 0) h -= v * Math.log2(v);
  return h === 0 ? 0 : h; // no −0
}

/** Gate entropy of every token (NaN where the token has no usable gates). */
export function gateEntropies(l: LayerTrace): number[] {
  const T = l.offsets.length - 1;
  const out = new Array<number>(T);
  for (let t = 0; t < T; t++) {
    const a = l.offsets[t]!;
    const b = l.offsets[t + 1]!;
    let sum = 0;
    for (let s = a; s < b; s++) sum += Math.abs(l.gates[s]!);
    if (!(sum > 0)) { out[t] = NaN; continue; }
    const p: number[] = [];
    for (let s = a; s < b; s++) p.push(Math.abs(l.gates[s]!) / sum);
    out[t] = entropyBits(p);
  }
  return out;
}

export function meanGateEntropy(l: LayerTrace): number {
  const hs = gateEntropies(l).filter(Number.isFinite);
  return hs.length ? hs.reduce((a, b) => a + b, 0) / hs.length : NaN;
}

export function loadEntropy(l: LayerTrace): number {
  const q = loadFractions(l);
  return q.some((v) => v > 0) ? entropyBits(q) : NaN;
}

export function normalisedLoadEntropy(l: LayerTrace): number {
  return l.numIds > 1 ? loadEntropy(l) / Math.log2(l.numIds) : NaN;
}
