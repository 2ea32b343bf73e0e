/**
 * Batched matmul: c[b, M, N] = a[b, M, K] · b[b, K, N] (row-major, float32). `linear` covers the weight-times-
 * activation case (nn.Linear layout, WASM-accelerated); this is the general activation × activation product.
 * i-k-j loop order so the inner loop streams rows of b and c.
 */
export function matmul(a: Float32Array, b: Float32Array, M: number, K: number, N: number, batch = 1,
  out: Float32Array = new Float32Array(batch * M * N)): Float32Array {
  if (a.length < batch * M * K || b.length < batch * K * N) throw new Error(`matmul: inputs too short for [${batch}, ${M}, ${K}] × [${batch}, ${K}, ${N}]`);
  for (let bi = 0; bi < batch; bi++) {
    const ao = bi * M * K;
    const bo = bi * K * N;
    const co = bi * M * N;
    for (let i = 0; i < M; i++) {
      const crow = co + i * N;
      for (let j = 0; j < N; j++) out[crow + j] = 0;
      for (let k = 0; k < K; k++) {
        const av = a[ao + i * K + k]!;
        if (av === 0) continue;
        const brow = bo + k * N;
        for (let j = 0; j < N; j++) out[crow + j]! += av * b[brow + j]!;
      }
    }
  }
  return out;
}
