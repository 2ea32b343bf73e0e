/** Next-token cross-entropy of a batch: mean over B·(S−1) positions of −log softmax(logits[t])[ids[t+1]]. */
export function lmLoss(logits: Float32Array, ids: ArrayLike<number>, B: number, S: number, V: number): number {
  let total = 0;
  let n = 0;
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < S - 1; s++) {
      const base = (b * S + s) * V;
      let m = -Infinity;
      for (let v = 0; v < V; v++) m = Math.max(m, logits[base + v]!);
      let z = 0;
      for (let v = 0; v < V; v++) z += Math.exp(logits[base + v]! - m);
      const target = ids[b * S + s + 1]!;
      total += m + Math.log(z) - logits[base + target]!;
      n++;
    }
  }
  return n ? total / n : 0;
}
