/**
 * The plain-TS linear kernel (the fallback where WebAssembly SIMD is missing) against a float64 reference.
 * It multiplies float32 values in float64 (exact: 24 + 24 significant bits < 53) and accumulates in float64, then
 * rounds once to float32, so |ŷ − y| ≤ u₃₂·|y| + 2·γ_d(u₆₄)·Σ|x_k·w_k| with d = K + 4 (four partial sums of K/4
 * terms plus their combination, at most) — much tighter than the float32 kernels' bound.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linearKernelName, linearTs } from '../../src/backend/cpu/linear.js';
import { checkBound, fillWeight, gamma, makeWeight, randomF32, referenceLinear, rng, U32 } from './ref.js';
import type { WeightDType } from '../../src/tensor/weight.js';

test('no accelerated kernel is installed in this process', () => {
  assert.equal(linearKernelName(), 'ts');
});

for (const dtype of ['f32', 'bf16'] as WeightDType[]) {
  test(`TS kernel (${dtype}) within bound of a float64 reference`, () => {
    const r = rng(dtype === 'f32' ? 11 : 12);
    for (const [K, N] of [[1, 1], [3, 5], [13, 17], [64, 36], [257, 31], [1024, 9]] as const) {
      const data = dtype === 'f32' ? new Float32Array(N * K) : new Uint16Array(N * K);
      fillWeight(dtype, data, r);
      const w = makeWeight('w', dtype, N, K, data);
      for (const T of [1, 2, 3, 7, 16, 33]) {
        const x = randomF32(T * K, r);
        const ref = referenceLinear(x, T, K, w, N);
        const out = new Float32Array(T * N);
        linearTs(x, T, K, w, N, out);
        const g = gamma(K + 4, 2 ** -53);
        const bad = checkBound(out, ref, (i) => U32 * Math.abs(ref.y[i]!) + 2 * g * ref.abs[i]! + 1e-38);
        assert.equal(bad, undefined, `T=${T} K=${K} N=${N}: ${bad}`);
      }
    }
  });
}
