/**
 * Token-ID specialisation (OpenMoE, Xue et al. 2024: routing is largely decided by the token id): how much of a
 * layer's routing the token id alone predicts.
 *
 * Per token t let x_t = its top-1 expert (the slot with the largest gate; first one on ties; tokens without slots
 * are skipped) and v_t its token id. Over the N remaining tokens:
 *  - accuracy = (1/N)·Σ_t [x_t = mode{x_u : v_u = v_t}], the fraction of tokens whose top-1 expert is the most
 *    frequent top-1 expert of their token id (ties in the mode: the smallest expert id). 1 for a deterministic
 *    token → expert map. Note every token id seen once is trivially predicted, hence also:
 *  - baseline = (1/N)·Σ_t [x_t = mode{x_u}], the same with one global mode (what a predictor ignoring the id gets);
 *  - nmi = I(V; X) / H(X) with the empirical joint distribution of (v_t, x_t), entropies in bits:
 *    I(V; X) = H(X) − H(X | V). 1 when the id determines the expert, 0 when they are independent;
 *    NaN when H(X) = 0 (every token on one expert: nothing to predict).
 */
import type { LayerTrace, RoutingTrace } from '../routing-trace.js';

export interface Specialisation {
  accuracy: number;
  baseline: number;
  nmi: number;
  /** Tokens counted (those with at least one slot). */
  tokens: number;
}

/** Top-1 expert per token (−1 for a token without slots). */
export function top1Experts(l: LayerTrace): number[] {
  const T = l.offsets.length - 1;
  const out = new Array<number>(T).fill(-1);
  for (let t = 0; t < T; t++) {
    let best = -Infinity;
    for (let s = l.offsets[t]!; s < l.offsets[t + 1]!; s++) {
      if (l.gates[s]! > best) { best = l.gates[s]!; out[t] = l.experts[s]!; }
    }
  }
  return out;
}

function mode(counts: Map<number, number>): number {
  let best = -1;
  let bestN = -1;
  for (const [k, n] of counts) if (n > bestN || (n === bestN && k < best)) { best = k; bestN = n; }
  return best;
}

function entropyOfCounts(counts: Iterable<number>, total: number): number {
  let h = 0;
  for (const n of counts) if (n > 0) h -= (n / total) * Math.log2(n / total);
  return h;
}

export function tokenSpecialisation(tokens: readonly number[], l: LayerTrace): Specialisation {
  const x = top1Experts(l);
  const byId = new Map<number, Map<number, number>>();
  const global = new Map<number, number>();
  let N = 0;
  for (let t = 0; t < x.length; t++) {
    if (x[t]! < 0) continue;
    N++;
    const v = tokens[t]!;
    let m = byId.get(v);
    if (!m) byId.set(v, (m = new Map()));
    m.set(x[t]!, (m.get(x[t]!) ?? 0) + 1);
    global.set(x[t]!, (global.get(x[t]!) ?? 0) + 1);
  }
  if (N === 0) return { accuracy: NaN, baseline: NaN, nmi: NaN, tokens: 0 };
  let hits = 0;
  let hCond = 0; // H(X | V) = Σ_v P(v)·H(X | V = v)
  for (const m of byId.values()) {
    const nv = [...m.values()].reduce((a, b) => a + b, 0);
    hits += m.get(mode(m))!;
    hCond += (nv / N) * entropyOfCounts(m.values(), nv);
  }
  const hX = entropyOfCounts(global.values(), N);
  return {
    accuracy: hits / N,
    baseline: global.get(mode(global))! / N,
    nmi: hX > 0 ? Math.min(1, Math.max(0, (hX - hCond) / hX)) : NaN,
    tokens: N,
  };
}

export function traceSpecialisation(tr: RoutingTrace): Specialisation[] {
  return tr.layers.map((l) => tokenSpecialisation(tr.tokens, l));
}
