/**
 * Rotary position embeddings applied in place to x[T, H, headDim], rotating the first `rotaryDim` dims of each head.
 * `half` layout (Llama rotate_half): pairs (i, i + d/2). `interleaved` layout (GPT-J / DeepSeek complex form): pairs
 * (2i, 2i + 1). Both give the same attention scores when applied to q and k alike; the layout only has to match how
 * the checkpoint's projections were trained.
 */
export function applyRope(
  x: Float32Array, T: number, H: number, headDim: number, positions: ArrayLike<number>,
  invFreq: Float32Array, attentionScale: number, interleaved: boolean, rotaryOffset = 0,
): void {
  const half = invFreq.length;
  for (let t = 0; t < T; t++) {
    const pos = positions[t]!;
    for (let i = 0; i < half; i++) {
      // HF computes freqs = pos * inv_freq in float32, then cos/sin, times attention_scaling.
      const ang = Math.fround(pos * invFreq[i]!);
      const c = Math.fround(Math.cos(ang) * attentionScale);
      const s = Math.fround(Math.sin(ang) * attentionScale);
      for (let h = 0; h < H; h++) {
        const base = (t * H + h) * headDim + rotaryOffset;
        const a = interleaved ? base + 2 * i : base + i;
        const b = interleaved ? a + 1 : a + half;
        const x1 = x[a]!;
        const x2 = x[b]!;
        x[a] = x1 * c - x2 * s;
        x[b] = x2 * c + x1 * s;
      }
    }
  }
}
