/** Row softmax and top-k selection. */

/** Softmax over each row of `cols` elements, in place. */
export function softmaxRows(x: Float32Array, cols: number): Float32Array {
  for (let base = 0; base < x.length; base += cols) {
    let m = -Infinity;
    for (let i = 0; i < cols; i++) m = Math.max(m, x[base + i]!);
    let s = 0;
    for (let i = 0; i < cols; i++) { const e = Math.exp(x[base + i]! - m); x[base + i] = e; s += e; }
    const r = 1 / s;
    for (let i = 0; i < cols; i++) x[base + i]! *= r;
  }
  return x;
}

/**
 * Indices of the k largest values of row[0..n) in descending order; ties go to the lower index (as torch.topk
 * does for distinct values). O(n·k), which is what routers need (k ≪ n).
 */
export function topkIndices(row: ArrayLike<number>, n: number, k: number, offset = 0, out = new Int32Array(k)): Int32Array {
  for (let j = 0; j < k; j++) {
    let best = -1;
    let bv = -Infinity;
    for (let i = 0; i < n; i++) {
      const v = row[offset + i]!;
      if ((v > bv || best < 0) && !taken(out, j, i)) { bv = v; best = i; }
    }
    out[j] = best;
  }
  return out;
}

function taken(sel: Int32Array, count: number, i: number): boolean {
  for (let j = 0; j < count; j++) if (sel[j] === i) return true;
  return false;
}
