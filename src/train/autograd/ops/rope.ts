/** Rotary embeddings (a fixed rotation per position: backward applies the inverse rotation). */
import { Var, alloc, result } from '../var.js';
import type { RopeTable } from '../../../nn/rope.js';

/**
 * x viewed as [T, H, headDim]; rotates dims [offset, offset + 2·table.invFreq.length) of each head at the given
 * positions (layout per table.interleaved), like nn/rope.ts `rope()` does in place for inference.
 *
 * The coefficients are those of backend/cpu/rope.ts: c = f32(cos(f32(pos·invFreq))·attentionScale), s likewise
 * (longrope: the long table when max(position) + 1 > its threshold, as nn/rope.ts picks it). The map is linear in x:
 * y_a = c·x_a − s·x_b, y_b = s·x_a + c·x_b, so the backward is its transpose: the inverse rotation times
 * attentionScale (not the inverse map, which would divide by it).
 */
export function rope(x: Var, table: RopeTable, H: number, headDim: number, positions: ArrayLike<number>, offset = 0): Var {
  let invFreq = table.invFreq;
  let attnScale = table.attentionScale;
  const half = invFreq.length;
  const stride = H * headDim;
  if (stride === 0 || x.size % stride !== 0) throw new Error(`rope: ${x.size} elements are not [T, ${H}, ${headDim}]`);
  if (offset < 0 || offset + 2 * half > headDim) throw new Error(`rope: rotating dims [${offset}, ${offset + 2 * half}) of a ${headDim}-dim head`);
  const T = x.size / stride;
  if (positions.length < T) throw new Error(`rope: ${positions.length} positions for ${T} rows`);
  if (table.long) {
    let maxPos = -Infinity;
    for (let t = 0; t < T; t++) if (positions[t]! > maxPos) maxPos = positions[t]!;
    if (maxPos + 1 > table.long.threshold) { invFreq = table.long.invFreq; attnScale = table.long.attentionScale; }
  }
  const cos = new Float64Array(T * half);
  const sin = new Float64Array(T * half);
  for (let t = 0; t < T; t++) {
    const pos = positions[t]!;
    for (let i = 0; i < half; i++) {
      const ang = Math.fround(pos * invFreq[i]!);
      cos[t * half + i] = Math.fround(Math.cos(ang) * attnScale);
      sin[t * half + i] = Math.fround(Math.sin(ang) * attnScale);
    }
  }
  const il = table.interleaved;
  const X = x.data;
  const out = alloc(X, X.length);
  out.set(X);
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      const base = (t * H + h) * headDim + offset;
      for (let i = 0; i < half; i++) {
        const c = cos[t * half + i]!;
        const s = sin[t * half + i]!;
        const a = il ? base + 2 * i : base + i;
        const b = il ? a + 1 : a + half;
        const x1 = X[a]!;
        const x2 = X[b]!;
        out[a] = x1 * c - x2 * s;
        out[b] = x2 * c + x1 * s;
      }
    }
  }
  return result('rope', out, x.shape, [x], (o) => {
    const dy = o.grad!;
    const g = x.g();
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < H; h++) {
        const rowBase = (t * H + h) * headDim;
        // Dims outside the rotated range pass straight through.
        for (let d = 0; d < offset; d++) g[rowBase + d]! += dy[rowBase + d]!;
        for (let d = offset + 2 * half; d < headDim; d++) g[rowBase + d]! += dy[rowBase + d]!;
        const base = rowBase + offset;
        for (let i = 0; i < half; i++) {
          const c = cos[t * half + i]!;
          const s = sin[t * half + i]!;
          const a = il ? base + 2 * i : base + i;
          const b = il ? a + 1 : a + half;
          const d1 = dy[a]!;
          const d2 = dy[b]!;
          g[a]! += d1 * c + d2 * s;
          g[b]! += d2 * c - d1 * s;
        }
      }
    }
  });
}
