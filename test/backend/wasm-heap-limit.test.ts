/**
 * Past the heap's limit (4 GiB for wasm32; capped lower here so the test is cheap) the weight allocator hands out
 * ordinary arrays with a single warning, and linear still runs on them (streamed through the staging buffer).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { freeWeightData, initWasmBackend, isHeapWeightData, shutdownWasmBackend, wasmBackendInfo, wasmLinear } from '../../src/backend/cpu/wasm/index.js';
import { allocWeightData } from '../../src/backend/cpu/weight-store.js';
import { checkBound, fillWeight, gamma, makeWeight, randomF32, referenceLinear, rng, wasmDepth } from './ref.js';

const CAP = 8 * 1024 * 1024;
const warnings: Error[] = [];
const onWarning = (w: Error): void => { warnings.push(w); };

before(() => {
  process.on('warning', onWarning);
  assert.ok(initWasmBackend({ threads: 2, maxHeapBytes: CAP, scratchBytes: 1024 * 1024, stagingBytes: 64 * 1024 }));
});

after(async () => {
  process.off('warning', onWarning);
  await shutdownWasmBackend();
});

test('a weight ending exactly at the end of the memory is read without over-reading (no trap)', () => {
  const r = rng(30);
  for (const [dtype, K, N] of [['f32', 100, 40], ['bf16', 104, 40]] as const) {
    const bytes = N * K * (dtype === 'f32' ? 4 : 2); // multiples of 16: no rounding
    const top = wasmBackendInfo()!.heap.top;
    const filler = allocWeightData('f32', (CAP - top - bytes) / 4);
    const data = allocWeightData(dtype, N * K);
    assert.ok(isHeapWeightData(data));
    assert.equal(data.byteOffset + data.byteLength, CAP, 'weight should end at the end of the memory');
    assert.equal(wasmBackendInfo()!.heap.memoryBytes, CAP);
    fillWeight(dtype, data, r);
    const w = makeWeight('end', dtype, N, K, data);
    for (const T of [1, 2, 3]) {
      const x = randomF32(T * K, r);
      const out = new Float32Array(T * N);
      wasmLinear(x, T, K, w, N, out, { forceParallel: true });
      const ref = referenceLinear(x, T, K, w, N);
      const g = gamma(wasmDepth(K));
      assert.equal(checkBound(out, ref, (i) => g * ref.abs[i]! + 1e-38), undefined);
    }
    assert.ok(freeWeightData(data));
    assert.ok(freeWeightData(filler));
    assert.ok(!freeWeightData(data), 'double free is refused');
  }
});

test('allocations past the cap fall back to plain arrays with one warning, and still compute correctly', async () => {
  const r = rng(31);
  const K = 1000, N = 700; // 1.4 MB as bf16
  const weights = [];
  for (let i = 0; i < 8; i++) {
    const data = allocWeightData('bf16', N * K);
    fillWeight('bf16', data, r);
    weights.push(makeWeight(`w${i}`, 'bf16', N, K, data));
  }
  const inHeap = weights.filter((w) => isHeapWeightData(w.data)).length;
  assert.ok(inHeap >= 1 && inHeap < weights.length, `expected some weights in the heap and some not, got ${inHeap}`);
  await new Promise((res) => setImmediate(res)); // warnings are emitted on the next tick
  const full = warnings.filter((w) => (w as Error & { code?: string }).code === 'SWITCHYARD_WASM_HEAP_FULL');
  assert.equal(full.length, 1);
  assert.match(full[0]!.message, /4 GiB/);

  const before = wasmBackendInfo()!.counts.staged;
  const T = 3;
  const x = randomF32(T * K, r);
  const g = gamma(wasmDepth(K));
  for (const w of weights) {
    const out = new Float32Array(T * N);
    wasmLinear(x, T, K, w, N, out);
    const ref = referenceLinear(x, T, K, w, N);
    assert.equal(checkBound(out, ref, (i) => g * ref.abs[i]! + 1e-38), undefined, w.name);
  }
  assert.ok(wasmBackendInfo()!.counts.staged > before);
});
