/**
 * Causal scaled-dot-product attention for one sequence over its KV cache, with grouped KV heads (GQA/MQA),
 * an optional sliding window, and optional per-head attention sinks (GPT-OSS: an extra logit that takes part in the
 * softmax but contributes no value).
 *
 * q: [Tq, H, dq]; k: [Tk, KVH, dq]; v: [Tk, KVH, dv]; query i sits at absolute position `start + i` and may see
 * keys at positions j with j ≤ start + i and (window ? j > start + i − window : true) — exactly transformers'
 * causal mask ∧ `sliding_window_overlay` (kv_idx > q_idx − sliding_window), so a window of W sees W keys incl. itself.
 */
export interface AttentionOpts {
  scale: number;
  window?: number | null;
  sinks?: Float32Array;
}

export function attention(
  q: Float32Array, Tq: number, H: number, dq: number,
  k: Float32Array, v: Float32Array, Tk: number, KVH: number, dv: number,
  start: number, opts: AttentionOpts, out = new Float32Array(Tq * H * dv),
): Float32Array {
  const group = H / KVH;
  const scores = new Float32Array(Tk);
  for (let i = 0; i < Tq; i++) {
    const pos = start + i;
    const lo = opts.window ? Math.max(0, pos - opts.window + 1) : 0;
    const hi = Math.min(pos, Tk - 1);
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / group);
      const qb = (i * H + h) * dq;
      let m = opts.sinks ? opts.sinks[h]! : -Infinity;
      for (let j = lo; j <= hi; j++) {
        const kb = (j * KVH + kvh) * dq;
        let s = 0;
        for (let d = 0; d < dq; d++) s += q[qb + d]! * k[kb + d]!;
        s *= opts.scale;
        scores[j] = s;
        if (s > m) m = s;
      }
      let sum = opts.sinks ? Math.exp(opts.sinks[h]! - m) : 0;
      for (let j = lo; j <= hi; j++) { const e = Math.exp(scores[j]! - m); scores[j] = e; sum += e; }
      const inv = 1 / sum;
      const ob = (i * H + h) * dv;
      for (let d = 0; d < dv; d++) out[ob + d] = 0;
      for (let j = lo; j <= hi; j++) {
        const p = scores[j]! * inv;
        const vb = (j * KVH + kvh) * dv;
        for (let d = 0; d < dv; d++) out[ob + d]! += p * v[vb + d]!;
      }
    }
  }
  return out;
}
