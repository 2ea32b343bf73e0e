/**
 * Causal scaled-dot-product attention over whole sequences (training: no KV cache).
 *
 * The forward evaluates, per (sequence, head, query), exactly the expressions of backend/cpu/attention.ts called on
 * that sequence with start = 0 (float32 outputs are bit-identical to inference). The softmax probabilities are kept
 * for the backward, in the input precision and only where visible (B·H·S(S+1)/2 values for full causal attention,
 * about B·H·S·window with a sliding window); the backward is the standard softmax-attention derivative:
 *   dV_j += Σ_i P_ij dO_i,  dP_ij = dO_i·V_j,  D_i = Σ_j P_ij dP_ij (= dO_i·O_i),  dS_ij = P_ij (dP_ij − D_i),
 *   dQ_i = scale Σ_j dS_ij K_j,  dK_j += scale Σ_i dS_ij Q_i,
 * and for a sink logit (which joins the softmax with no value, so its dP is 0): dsink_h = −Σ_i p_sink(i)·D_i.
 */
import { Var, alloc, result, type FArray } from '../var.js';

export interface AttentionShape {
  B: number; S: number; H: number; KVH: number; dq: number; dv: number;
  scale: number;
  /** Sliding window (keys j with i − window < j ≤ i), null = full causal. */
  window?: number | null;
}

/**
 * q [B·S, H·dq], k [B·S, KVH·dq], v [B·S, KVH·dv] → [B·S, H·dv]. GQA: head h uses kv head ⌊h / (H / KVH)⌋.
 * `sinks` [H] (GPT-OSS): an extra per-head logit in the softmax that carries no value; gets a gradient too.
 */
export function attention(q: Var, k: Var, v: Var, s: AttentionShape, sinks?: Var): Var {
  const { B, S, H, KVH, dq, dv, scale } = s;
  const window = s.window;
  if (!(KVH > 0 && H % KVH === 0)) throw new Error(`attention: ${H} heads do not group over ${KVH} kv heads`);
  const T = B * S;
  if (q.size !== T * H * dq) throw new Error(`attention: q has ${q.size} values, expected [${T}, ${H}·${dq}]`);
  if (k.size !== T * KVH * dq) throw new Error(`attention: k has ${k.size} values, expected [${T}, ${KVH}·${dq}]`);
  if (v.size !== T * KVH * dv) throw new Error(`attention: v has ${v.size} values, expected [${T}, ${KVH}·${dv}]`);
  if (sinks && sinks.size !== H) throw new Error(`attention: sinks has ${sinks.size} values, expected ${H}`);
  const group = H / KVH;
  const Q = q.data;
  const K = k.data;
  const V = v.data;
  const SK = sinks?.data;
  const qs = H * dq;
  const ks = KVH * dq;
  const vs = KVH * dv;
  const os = H * dv;
  // P keeps, per (b, h), the visible band of each query row: row i holds keys lo(i)..i (min(i + 1, W) values), at
  // rowOffset(i) within the (b, h) block of `band` values.
  const W = window && window < S ? window : S;
  const band = (W * (W + 1)) / 2 + (S - W) * W;
  const rowOffset = (i: number): number => (i < W ? (i * (i + 1)) / 2 : (W * (W + 1)) / 2 + (i - W) * W);
  const out = alloc(Q, T * os);
  const P = alloc(Q, B * H * band);
  const pSink = SK ? new Float64Array(B * H * S) : null;
  // Same precision as the inference kernel's scores buffer (float32 rounds each score and exponential on store).
  const scores = alloc(Q, S);

  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / group);
      const pBase = (b * H + h) * band;
      for (let i = 0; i < S; i++) {
        const lo = window ? Math.max(0, i - window + 1) : 0;
        const qb = (b * S + i) * qs + h * dq;
        let m = SK ? SK[h]! : -Infinity;
        for (let j = lo; j <= i; j++) {
          const kb = (b * S + j) * ks + kvh * dq;
          // Summed strictly left to right (as the inference kernel does), four terms per iteration.
          let acc = 0;
          let d = 0;
          for (; d + 4 <= dq; d += 4) {
            acc += Q[qb + d]! * K[kb + d]!;
            acc += Q[qb + d + 1]! * K[kb + d + 1]!;
            acc += Q[qb + d + 2]! * K[kb + d + 2]!;
            acc += Q[qb + d + 3]! * K[kb + d + 3]!;
          }
          for (; d < dq; d++) acc += Q[qb + d]! * K[kb + d]!;
          acc *= scale;
          scores[j] = acc;
          if (acc > m) m = acc;
        }
        let sum = SK ? Math.exp(SK[h]! - m) : 0;
        for (let j = lo; j <= i; j++) { const e = Math.exp(scores[j]! - m); scores[j] = e; sum += e; }
        const inv = 1 / sum;
        if (pSink) pSink[(b * H + h) * S + i] = Math.exp(SK![h]! - m) * inv;
        const ob = (b * S + i) * os + h * dv;
        const pRow = pBase + rowOffset(i) - lo;
        for (let j = lo; j <= i; j++) {
          const p = scores[j]! * inv;
          P[pRow + j] = p;
          const vb = (b * S + j) * vs + kvh * dv;
          axpy(out, ob, p, V, vb, dv);
        }
      }
    }
  }

  const parents = sinks ? [q, k, v, sinks] : [q, k, v];
  return result('attention', out, [T, os], parents, (o) => {
    const dO = o.grad!;
    const gq = q.requiresGrad ? q.g() : null;
    const gk = k.requiresGrad ? k.g() : null;
    const gv = v.requiresGrad ? v.g() : null;
    const gs = sinks?.requiresGrad ? sinks.g() : null;
    const dP = new Float64Array(S);
    const qAcc = new Float64Array(dq);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        const kvh = Math.floor(h / group);
        const pBase = (b * H + h) * band;
        let sinkGrad = 0;
        for (let i = 0; i < S; i++) {
          const lo = window ? Math.max(0, i - window + 1) : 0;
          const qb = (b * S + i) * qs + h * dq;
          const ob = (b * S + i) * os + h * dv;
          const pRow = pBase + rowOffset(i) - lo;
          let D = 0;
          for (let j = lo; j <= i; j++) {
            const p = P[pRow + j]!;
            const vb = (b * S + j) * vs + kvh * dv;
            const dp = dot(dO, ob, V, vb, dv);
            dP[j] = dp;
            D += p * dp;
            if (gv) axpy(gv, vb, p, dO, ob, dv);
          }
          if (pSink) sinkGrad -= pSink[(b * H + h) * S + i]! * D;
          if (!gq && !gk) continue;
          if (gq) qAcc.fill(0);
          for (let j = lo; j <= i; j++) {
            const ds = P[pRow + j]! * (dP[j]! - D) * scale;
            const kb = (b * S + j) * ks + kvh * dq;
            if (gq) axpy64(qAcc, ds, K, kb, dq);
            if (gk) axpy(gk, kb, ds, Q, qb, dq);
          }
          if (gq) for (let d = 0; d < dq; d++) gq[qb + d]! += qAcc[d]!;
        }
        if (gs) gs[h]! += sinkGrad;
      }
    }
  });
}

/** y[yo + d] += a · x[xo + d] for d < n (elementwise, so unrolling does not change any result). */
function axpy(y: FArray, yo: number, a: number, x: FArray, xo: number, n: number): void {
  let d = 0;
  for (; d + 4 <= n; d += 4) {
    y[yo + d]! += a * x[xo + d]!;
    y[yo + d + 1]! += a * x[xo + d + 1]!;
    y[yo + d + 2]! += a * x[xo + d + 2]!;
    y[yo + d + 3]! += a * x[xo + d + 3]!;
  }
  for (; d < n; d++) y[yo + d]! += a * x[xo + d]!;
}

/** Σ_d a[ao + d]·b[bo + d] with four partial sums (backward only: no inference result to match bit for bit). */
function dot(a: FArray, ao: number, b: FArray, bo: number, n: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let d = 0;
  for (; d + 4 <= n; d += 4) {
    s0 += a[ao + d]! * b[bo + d]!;
    s1 += a[ao + d + 1]! * b[bo + d + 1]!;
    s2 += a[ao + d + 2]! * b[bo + d + 2]!;
    s3 += a[ao + d + 3]! * b[bo + d + 3]!;
  }
  for (; d < n; d++) s0 += a[ao + d]! * b[bo + d]!;
  return s0 + s1 + s2 + s3;
}

/** acc[d] += a · x[xo + d] for d < n into a float64 accumulator row (kept separate from axpy to stay monomorphic). */
function axpy64(acc: Float64Array, a: number, x: FArray, xo: number, n: number): void {
  let d = 0;
  for (; d + 4 <= n; d += 4) {
    acc[d]! += a * x[xo + d]!;
    acc[d + 1]! += a * x[xo + d + 1]!;
    acc[d + 2]! += a * x[xo + d + 2]!;
    acc[d + 3]! += a * x[xo + d + 3]!;
  }
  for (; d < n; d++) acc[d]! += a * x[xo + d]!;
}
