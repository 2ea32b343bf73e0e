/** Batched matmul against a float64 triple loop. Tolerance: float32 accumulation over K ≤ 70 terms of O(1) values. */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { matmul } from '../../src/backend/cpu/matmul.js';
import { makeRng } from '../../src/infer/sampling.js';

it('matmul equals a float64 reference for odd shapes and batches', () => {
  const rng = makeRng(5);
  for (const [B, M, K, N] of [[1, 1, 1, 1], [2, 3, 5, 7], [3, 17, 70, 9], [1, 33, 8, 65]] as const) {
    const a = Float32Array.from({ length: B * M * K }, () => rng() * 2 - 1);
    const b = Float32Array.from({ length: B * K * N }, () => rng() * 2 - 1);
    const c = matmul(a, b, M, K, N, B);
    for (let bi = 0; bi < B; bi++) for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
      let s = 0;
      let mag = 0;
      for (let k = 0; k < K; k++) { const p = a[(bi * M + i) * K + k]! * b[(bi * K + k) * N + j]!; s += p; mag += Math.abs(p); }
      const got = c[(bi * M + i) * N + j]!;
      assert.ok(Math.abs(got - s) <= 1e-6 * mag + 1e-7, `[${B},${M},${K},${N}] (${bi},${i},${j}): ${got} vs ${s}`);
    }
  }
});
