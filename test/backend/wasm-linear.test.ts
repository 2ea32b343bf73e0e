/**
 * The WASM SIMD linear kernels against a float64 reference, and the properties the backend promises:
 * threaded = single-threaded bit for bit, a token's result does not depend on the batch it is in, weights outside
 * the heap (streamed through staging) give the same bits as weights in it.
 *
 * Tolerance: the kernels accumulate in float32 in a fixed order (assembly/linear.ts). Every product passes through
 * at most d = 2⌈K/8⌉ + 10 roundings (its multiply, two adds per later 8-block, two for the horizontal sum, up to
 * seven tail adds), so |ŷ − y| ≤ γ_d · Σ|x_k·w_k| with γ_d = d·u/(1 − d·u), u = 2⁻²⁴ (Higham, Accuracy and
 * Stability of Numerical Algorithms, §3.1). bf16 weights widen to f32 exactly, so the same bound holds for them
 * (the reference uses the same bf16 values). A wrong element order or a missed tail gives errors of the order of
 * the outputs themselves, far beyond this bound.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  initWasmBackend, shutdownWasmBackend, wasmBackendReady, wasmBackendInfo, wasmLinear, isHeapWeightData,
  wasmBackendUnavailableReason,
} from '../../src/backend/cpu/wasm/index.js';
import { allocWeightData } from '../../src/backend/cpu/weight-store.js';
import { linearInto, linearKernelName } from '../../src/backend/cpu/linear.js';
import { weightSlice, type WeightDType } from '../../src/tensor/weight.js';
import { bitsEqual, checkBound, fillWeight, gamma, makeWeight, randomF32, referenceLinear, rng, wasmDepth } from './ref.js';

const Ts = [1, 2, 3, 7, 16, 33];
const KNs: [number, number][] = [[1, 1], [3, 5], [8, 4], [13, 17], [16, 16], [64, 36], [100, 9], [257, 31], [1024, 70]];
const dtypes: WeightDType[] = ['f32', 'bf16'];

before(async () => {
  // Small scratch and staging regions so token tiling and multi-chunk staging are exercised by these shapes.
  const ok = initWasmBackend({ threads: 2, scratchBytes: 64 * 1024, stagingBytes: 8 * 1024 });
  assert.ok(ok, `WASM backend unavailable: ${wasmBackendUnavailableReason()}`);
  await wasmBackendReady();
});

after(async () => {
  await shutdownWasmBackend();
});

test('weights allocated after init live in the heap', () => {
  const d = allocWeightData('bf16', 100);
  assert.ok(isHeapWeightData(d));
  assert.equal(d.byteOffset % 16, 0);
  assert.ok(!isHeapWeightData(new Uint16Array(100)));
  assert.equal(linearKernelName(), 'wasm-simd');
});

for (const dtype of dtypes) {
  test(`${dtype}: kernel within the float32 error bound of a float64 reference; threads, staging and batching change no bits`, () => {
    const r = rng(dtype === 'f32' ? 1 : 2);
    const before = wasmBackendInfo()!.counts;
    for (const [K, N] of KNs) {
      const data = allocWeightData(dtype, N * K);
      fillWeight(dtype, data, r);
      const w = makeWeight(`w${K}x${N}`, dtype, N, K, data);
      const plain = makeWeight(`plain${K}x${N}`, dtype, N, K, dtype === 'f32' ? Float32Array.from(data as Float32Array) : Uint16Array.from(data as Uint16Array));
      const g = gamma(wasmDepth(K));
      for (const T of Ts) {
        const x = randomF32(T * K, r);
        const ref = referenceLinear(x, T, K, w, N);
        const single = new Float32Array(T * N);
        wasmLinear(x, T, K, w, N, single, { maxThreads: 1 });
        const bad = checkBound(single, ref, (i) => g * ref.abs[i]! + 1e-38);
        assert.equal(bad, undefined, `${dtype} T=${T} K=${K} N=${N}: ${bad}`);

        const threaded = new Float32Array(T * N).fill(NaN);
        wasmLinear(x, T, K, w, N, threaded, { forceParallel: true });
        assert.equal(bitsEqual(threaded, single), undefined, `threaded ≠ single (${dtype} T=${T} K=${K} N=${N})`);

        const staged = new Float32Array(T * N).fill(NaN);
        wasmLinear(x, T, K, plain, N, staged, { forceParallel: true });
        assert.equal(bitsEqual(staged, single), undefined, `staged ≠ in-heap (${dtype} T=${T} K=${K} N=${N})`);

        if (T > 1) {
          // Each token alone gives the same bits as inside the batch.
          for (const t of [0, T - 1]) {
            const one = new Float32Array(N);
            wasmLinear(x.subarray(t * K, (t + 1) * K), 1, K, w, N, one, { maxThreads: 1 });
            assert.equal(bitsEqual(one, single.subarray(t * N, (t + 1) * N)), undefined, `token ${t} of T=${T} differs alone (${dtype} K=${K} N=${N})`);
          }
        }
      }
    }
    const after = wasmBackendInfo()!.counts;
    assert.ok(after.parallel > before.parallel, 'no call was split across threads');
    assert.ok(after.staged > before.staged, 'no call went through staging');
    assert.equal(after.ts, before.ts, 'no call should fall back to the TS kernel');
  });
}

test('large calls are split across threads without forcing', () => {
  const r = rng(3);
  const K = 1024;
  const N = 1100; // T·N·K ≥ 2^20
  const data = allocWeightData('bf16', N * K);
  fillWeight('bf16', data, r);
  const w = makeWeight('big', 'bf16', N, K, data);
  const x = randomF32(K, r);
  const a = new Float32Array(N);
  const b = new Float32Array(N);
  const before = wasmBackendInfo()!.counts.parallel;
  wasmLinear(x, 1, K, w, N, a);
  assert.equal(wasmBackendInfo()!.counts.parallel, before + 1);
  wasmLinear(x, 1, K, w, N, b, { maxThreads: 1 });
  assert.equal(bitsEqual(a, b), undefined);
});

test('expert slices of a fused tensor (unaligned rows) and offset activations', () => {
  const r = rng(4);
  const E = 3, N = 11, K = 13, T = 5;
  const fused = { name: 'fused', dtype: 'bf16' as const, shape: [E, N, K], data: allocWeightData('bf16', E * N * K) };
  fillWeight('bf16', fused.data, r);
  const buf = randomF32(T * K + 7, r);
  const x = buf.subarray(7); // byteOffset not a multiple of 16
  for (let e = 0; e < E; e++) {
    const s = weightSlice(fused, e, e + 1);
    const w = makeWeight(`e${e}`, 'bf16', N, K, s.data);
    const ref = referenceLinear(x, T, K, w, N);
    const outBuf = new Float32Array(T * N + 3);
    const out = outBuf.subarray(3);
    wasmLinear(x, T, K, w, N, out, { forceParallel: true });
    const g = gamma(wasmDepth(K));
    assert.equal(checkBound(out, ref, (i) => g * ref.abs[i]! + 1e-38), undefined);
    assert.deepEqual([...outBuf.subarray(0, 3)], [0, 0, 0], 'wrote before the output view');
  }
});

test('linearInto goes through the installed kernel and adds the bias', () => {
  const r = rng(5);
  const T = 3, K = 40, N = 6;
  const data = allocWeightData('f32', N * K);
  fillWeight('f32', data, r);
  const w = makeWeight('w', 'f32', N, K, data);
  const bias = makeWeight('b', 'f32', N, 1, randomF32(N, r));
  const x = randomF32(T * K, r);
  const out = new Float32Array(T * N);
  const before = wasmBackendInfo()!.counts.launches;
  linearInto(x, T, K, { ...w, shape: [N, K] }, out, { ...bias, shape: [N] });
  assert.ok(wasmBackendInfo()!.counts.launches > before);
  const ref = referenceLinear(x, T, K, w, N);
  const g = gamma(wasmDepth(K) + 1);
  for (let t = 0; t < T; t++) {
    for (let n = 0; n < N; n++) {
      const i = t * N + n;
      const want = ref.y[i]! + bias.data[n]!;
      assert.ok(Math.abs(out[i]! - want) <= g * (ref.abs[i]! + Math.abs(bias.data[n]!)) + 1e-38, `out[${i}] ${out[i]} vs ${want}`);
    }
  }
});

test('degenerate sizes', () => {
  const w = makeWeight('w', 'f32', 4, 0, allocWeightData('f32', 0));
  const out = new Float32Array(8).fill(7);
  wasmLinear(new Float32Array(0), 2, 0, w, 4, out);
  assert.deepEqual([...out], new Array(8).fill(0));
  wasmLinear(new Float32Array(0), 0, 5, makeWeight('w', 'f32', 4, 5, allocWeightData('f32', 20)), 4, new Float32Array(0));
  assert.throws(() => wasmLinear(new Float32Array(3), 1, 5, makeWeight('w', 'f32', 4, 5, allocWeightData('f32', 20)), 4, new Float32Array(4)), /input has 3 values/);
});
