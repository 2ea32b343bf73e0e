/**
 * GPU `linear` (src/backend/webgpu/kernels/matmul.ts) against the CPU `linear` (src/backend/cpu/linear.ts; without
 * initCpuBackend it runs the plain-TS loop, which accumulates in float64 and rounds once, so it is the exact answer
 * to within half an f32 ulp). Both code paths (GEMV for M ≤ 8, tiled GEMM above), odd sizes around the tile and
 * pair boundaries, with and without bias, and all three weight storage dtypes: f16 weights are compared against the
 * CPU result on the same f16-rounded values (as f32), bf16 weights against the CPU bf16 path.
 *
 * Tolerance: |gpu − ref| ≤ (K + 8)·2⁻²⁴·Σ_k|x_k·w_k| + 1e-7. The GPU sums K products in f32 (any order: per-thread
 * strided partials then a tree, or a sequential K loop); the standard bound for f32 summation of n terms is
 * γ_n·Σ|terms| with γ_n ≈ n·2⁻²⁴, and +8 covers the product roundings, the bias add and the final rounding.
 * For the K ≤ 130 shapes here that is ≤ 8.2e-6 relative to Σ|x·w| — in line with "1e-5 relative".
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GpuContext } from '../../../src/backend/webgpu/context.js';
import { uploadF32, uploadWeight, type GpuWeight } from '../../../src/backend/webgpu/weights.js';
import { linear, linearInto } from '../../../src/backend/webgpu/kernels/matmul.js';
import { linear as cpuLinear } from '../../../src/backend/cpu/linear.js';
import { seededUniform } from '../../../src/train/model/rng.js';
import { f16ToF32, f32ToBf16, f32ToF16, bf16ToF32 } from '../../../src/tensor/dtype.js';
import type { Weight } from '../../../src/tensor/weight.js';

let ctx: GpuContext;
// Without subgroup matrices: these are the f32-activation kernels (coop-gemm.test.ts covers the tensor-core ones).
before(async () => { ctx = await GpuContext.create({ subgroupMatrix: false }); });
after(() => { ctx.destroy(); });

type WDT = 'f32' | 'f16' | 'bf16';

function rand(n: number, r: () => number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}

/** A CPU weight for the reference plus the GPU upload, holding the same (rounded) values. */
function makeWeight(dtype: WDT, N: number, K: number, r: () => number): { cpu: Weight; gpu: GpuWeight; vals: Float32Array } {
  const raw = rand(N * K, r);
  if (dtype === 'bf16') {
    const bits = Uint16Array.from(raw, (v) => f32ToBf16(v));
    const cpu: Weight = { name: 'w', dtype: 'bf16', shape: [N, K], data: bits };
    return { cpu, gpu: uploadWeight(ctx, cpu), vals: Float32Array.from(bits, (b) => bf16ToF32(b)) };
  }
  const vals = dtype === 'f16' ? Float32Array.from(raw, (v) => f16ToF32(f32ToF16(v))) : raw;
  const cpu: Weight = { name: 'w', dtype: 'f32', shape: [N, K], data: vals };
  return { cpu, gpu: uploadWeight(ctx, cpu, { f16: dtype === 'f16' }), vals };
}

async function check(M: number, K: number, N: number, dtype: WDT, withBias: boolean, seed: number): Promise<void> {
  const r = seededUniform(seed);
  const xs = rand(M * K, r);
  const w = makeWeight(dtype, N, K, r);
  assert.equal(w.gpu.dtype, dtype);
  const bvals = withBias ? rand(N, r) : undefined;
  const bias: Weight | undefined = bvals ? { name: 'b', dtype: 'f32', shape: [N], data: bvals } : undefined;
  const gbias = bvals ? uploadF32(ctx, bvals, 'b') : undefined;
  const x = ctx.upload(xs, [M, K]);
  const y = linear(ctx, x, M, K, w.gpu, gbias);
  const got = await ctx.read(y);
  const ref = cpuLinear(xs, M, K, w.cpu, bias);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let mag = 0;
      for (let k = 0; k < K; k++) mag += Math.abs(xs[m * K + k]! * w.vals[n * K + k]!);
      const tol = (K + 8) * 2 ** -24 * mag + 1e-7;
      const i = m * N + n;
      assert.ok(Math.abs(got[i]! - ref[i]!) <= tol, `M=${M} K=${K} N=${N} ${dtype} bias=${withBias} (${m},${n}): ${got[i]} vs ${ref[i]} (tol ${tol})`);
    }
  }
  ctx.release(x, y);
  w.gpu.buffer.destroy();
  gbias?.buffer.destroy();
}

for (const dtype of ['f32', 'f16', 'bf16'] as const) {
  test(`linear matches the CPU reference over odd shapes, ${dtype} weights`, async () => {
    let seed = 1;
    for (const M of [1, 3, 8, 9, 67]) {
      for (const K of [1, 17, 64, 130]) {
        for (const N of [1, 5, 64, 129]) {
          seed++;
          await check(M, K, N, dtype, seed % 2 === 0, seed * 7919 + dtype.length);
        }
      }
    }
  });
}

test('linear: longer K on both paths (GEMV pairs with odd-row singles, GEMM K tiles)', async () => {
  // K = 1030 / 1031: each GEMV thread takes several pairs; with odd K, odd rows start mid-word (f16/bf16) and take
  // a leading single. GEMM runs 65 K tiles, the last partial.
  for (const dtype of ['f32', 'f16', 'bf16'] as const) {
    await check(1, 1030, 37, dtype, true, 11);
    await check(3, 1031, 9, dtype, false, 13);
    await check(2, 1031, 9, dtype, true, 14);
    await check(70, 1031, 37, dtype, true, 12);
  }
});

test('linearInto writes into a given tensor and leaves the rest of it alone; argument checks', async () => {
  const r = seededUniform(3);
  const M = 2, K = 6, N = 3;
  const xs = rand(M * K, r);
  const w = makeWeight('f32', N, K, r);
  const x = ctx.upload(xs, [M, K]);
  const out = ctx.upload(new Float32Array(M * N + 4).fill(42), [M * N + 4]);
  linearInto(ctx, x, M, K, w.gpu, out);
  const got = await ctx.read(out);
  const ref = cpuLinear(xs, M, K, w.cpu);
  for (let i = 0; i < M * N; i++) assert.ok(Math.abs(got[i]! - ref[i]!) <= 1e-6, `${i}: ${got[i]} vs ${ref[i]}`);
  for (let i = M * N; i < M * N + 4; i++) assert.equal(got[i], 42);
  assert.throws(() => linear(ctx, x, M, K + 1, w.gpu), /expected \[N, 7\]/);
  assert.throws(() => linearInto(ctx, x, M, K, w.gpu, x), /must not share a buffer/);
  const b16 = uploadWeight(ctx, { name: 'b', dtype: 'bf16', shape: [N], data: new Uint16Array(N) });
  assert.throws(() => linear(ctx, x, M, K, w.gpu, b16), /expected f32 \[3\]/);
  ctx.release(x, out);
  w.gpu.buffer.destroy();
  b16.buffer.destroy();
});

test('linear: GEMV over more than 65535 workgroups (2-D grid)', async () => {
  // 4 columns per workgroup: N = 262_150 columns needs 65_538 workgroups, folded into a 2-row grid.
  const M = 1, K = 2, N = 262_150;
  const r = seededUniform(9);
  const xs = rand(M * K, r);
  const w = makeWeight('bf16', N, K, r);
  const x = ctx.upload(xs, [M, K]);
  const y = linear(ctx, x, M, K, w.gpu);
  const got = await ctx.read(y);
  const ref = cpuLinear(xs, M, K, w.cpu);
  for (let n = 0; n < N; n++) {
    const mag = Math.abs(xs[0]! * w.vals[2 * n]!) + Math.abs(xs[1]! * w.vals[2 * n + 1]!);
    assert.ok(Math.abs(got[n]! - ref[n]!) <= 10 * 2 ** -24 * mag + 1e-7, `${n}: ${got[n]} vs ${ref[n]}`);
  }
  ctx.release(x, y);
  w.gpu.buffer.destroy();
});
