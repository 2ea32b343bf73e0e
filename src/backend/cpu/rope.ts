/**
 * Rotary position embeddings applied in place to x[T, H, headDim], rotating 2·half dims of each head from `offset`.
 * `half` layout (Llama rotate_half): pairs (i, i + half). `interleaved` layout (GPT-J / DeepSeek complex form): pairs
 * (2i, 2i + 1). Both give the same attention scores when applied to q and k alike; the layout only has to match how
 * the checkpoint's projections were trained.
 *
 * The (cos, sin) of every (position, frequency) come from a [T, half, 2] table (`ropeCosSinFrom`), the same table the
 * device backends upload, so every backend rotates with identical factors.
 */

/**
 * (cos, sin) pairs [T, half, 2] for the positions: HF computes freqs = pos · inv_freq in float32, then cos/sin,
 * times attention_scaling, stored as float32.
 */
export function ropeCosSinFrom(invFreq: Float32Array, attentionScale: number, positions: ArrayLike<number>): Float32Array {
  const T = positions.length;
  const half = invFreq.length;
  const out = new Float32Array(T * half * 2);
  for (let t = 0; t < T; t++) {
    const pos = positions[t]!;
    for (let i = 0; i < half; i++) {
      const ang = Math.fround(pos * invFreq[i]!);
      out[(t * half + i) * 2] = Math.cos(ang) * attentionScale; // the Float32Array store rounds like Math.fround
      out[(t * half + i) * 2 + 1] = Math.sin(ang) * attentionScale;
    }
  }
  return out;
}

/** Rotate x[T, H, headDim] in place with a [T, half, 2] (cos, sin) table. */
export function applyRopeTable(
  x: Float32Array, T: number, H: number, headDim: number, cosSin: Float32Array, half: number, interleaved: boolean, rotaryOffset = 0,
): void {
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      const c = cosSin[(t * half + i) * 2]!;
      const s = cosSin[(t * half + i) * 2 + 1]!;
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

/** Rotate x[T, H, headDim] in place at the given positions with these inverse frequencies. */
export function applyRope(
  x: Float32Array, T: number, H: number, headDim: number, positions: ArrayLike<number>,
  invFreq: Float32Array, attentionScale: number, interleaved: boolean, rotaryOffset = 0,
): void {
  applyRopeTable(x, T, H, headDim, ropeCosSinFrom(invFreq, attentionScale, positions), invFreq.length, interleaved, rotaryOffset);
}
