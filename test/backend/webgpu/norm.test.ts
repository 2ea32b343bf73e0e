/**
 * GPU rmsNorm / layerNorm (src/backend/webgpu/kernels/norm.ts) against the CPU kernels of src/backend/cpu/norm.ts
 * (float64 sums, one f32 rounding per output): group sizes below, at and above the workgroup widths (64 / 256
 * threads, strided), one row, per-head groups over [S, H·hd], in place, a bf16 weight, and > 65535 groups (2-D grid).
 *
 * Tolerances (u = 2⁻²⁴):
 * - rms: the GPU's f32 sum of squares has relative error ≲ (G/WG + log₂WG)·u (strided partials, then a tree);
 *   r = 1/sqrt(ss/G + eps) adds ≲ 6u (division, sqrt: a few ulp each in Vulkan), and the two products 2u. For
 *   G ≤ 4100 that is < 30u ≈ 1.8e-6 relative to the output itself (no cancellation): |err| ≤ 4e-6·|ref| + 1e-30.
 * - layer: the mean carries an absolute error ≲ (G/WG + 8)·u·max|x| that x − mean does not cancel, so the bound is
 *   relative to the scale of the terms: |err| ≤ 4e-6·(r·|w_i|·max|x| + |b_i|), r = 1/sqrt(var + eps).
 * - addNorm (residual add fused into the norm): the GPU forms h + s·a with up to two f32 roundings where the CPU
 *   (Float32Array +=) rounds the float64 value once, so the updated h may differ by 2⁻²³·(|h| + |s·a|) per element
 *   (checked exactly that way); that perturbation reaches the output scaled by r·|w_i|, added to the norm bounds above.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GpuContext } from '../../../src/backend/webgpu/context.js';
import { uploadF32, uploadWeight, type GpuWeight } from '../../../src/backend/webgpu/weights.js';
import { addNorm, rmsNorm, layerNorm } from '../../../src/backend/webgpu/kernels/norm.js';
import { rmsNorm as cpuRms, layerNorm as cpuLayer } from '../../../src/backend/cpu/norm.js';
import { seededUniform } from '../../../src/train/model/rng.js';
import { bf16ToF32, f32ToBf16 } from '../../../src/tensor/dtype.js';

let ctx: GpuContext;
before(async () => { ctx = await GpuContext.create(); });
after(() => { ctx.destroy(); });

function rand(n: number, r: () => number, scale = 1, offset = 0): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = offset + (r() * 2 - 1) * scale;
  return a;
}

/** A norm weight on the GPU plus its exact f32 values (bf16-rounded when stored as bf16). */
function normWeight(vals: Float32Array, dtype: 'f32' | 'bf16'): { gpu: GpuWeight; vals: Float32Array } {
  if (dtype === 'f32') return { gpu: uploadF32(ctx, vals, 'w'), vals };
  const bits = Uint16Array.from(vals, (v) => f32ToBf16(v));
  const gpu = uploadWeight(ctx, { name: 'w', dtype: 'bf16', shape: [vals.length], data: bits });
  return { gpu, vals: Float32Array.from(bits, (b) => bf16ToF32(b)) };
}

async function checkRms(rows: number, width: number, G: number, eps: number, seed: number, opts: { wd?: 'f32' | 'bf16'; inPlace?: boolean } = {}): Promise<void> {
  const r = seededUniform(seed);
  const xs = rand(rows * width, r, 3);
  const w = normWeight(rand(G, r, 1, 1), opts.wd ?? 'f32');
  const x = ctx.upload(xs, [rows, width]);
  const y = rmsNorm(ctx, x, rows, w.gpu, eps, opts.inPlace ? x : undefined);
  if (opts.inPlace) assert.equal(y, x);
  const got = await ctx.read(y, rows * width);
  const ref = cpuRms(xs, w.vals, eps);
  for (let i = 0; i < ref.length; i++) {
    const tol = 4e-6 * Math.abs(ref[i]!) + 1e-30;
    assert.ok(Math.abs(got[i]! - ref[i]!) <= tol, `rms rows=${rows} width=${width} G=${G} [${i}]: ${got[i]} vs ${ref[i]}`);
  }
  ctx.release(x);
  if (y !== x) ctx.release(y);
  w.gpu.buffer.destroy();
}

async function checkLayer(rows: number, width: number, G: number, eps: number, withBias: boolean, seed: number, inPlace = false): Promise<void> {
  const r = seededUniform(seed);
  const xs = rand(rows * width, r, 2, 0.75);
  const wv = rand(G, r, 1, 1);
  const bv = withBias ? rand(G, r) : undefined;
  const w = uploadF32(ctx, wv, 'w');
  const b = bv ? uploadF32(ctx, bv, 'b') : undefined;
  const x = ctx.upload(xs, [rows, width]);
  const y = layerNorm(ctx, x, rows, w, b, eps, inPlace ? x : undefined);
  const got = await ctx.read(y, rows * width);
  const ref = cpuLayer(xs, wv, bv, eps);
  for (let base = 0; base < ref.length; base += G) {
    let mean = 0, v = 0, mx = 0;
    for (let i = 0; i < G; i++) { mean += xs[base + i]!; mx = Math.max(mx, Math.abs(xs[base + i]!)); }
    mean /= G;
    for (let i = 0; i < G; i++) v += (xs[base + i]! - mean) ** 2;
    const rs = 1 / Math.sqrt(v / G + eps);
    for (let i = 0; i < G; i++) {
      const tol = 4e-6 * (rs * Math.abs(wv[i]!) * mx + (bv ? Math.abs(bv[i]!) : 0));
      const j = base + i;
      assert.ok(Math.abs(got[j]! - ref[j]!) <= tol, `layer rows=${rows} width=${width} G=${G} bias=${withBias} [${j}]: ${got[j]} vs ${ref[j]}`);
    }
  }
  ctx.release(x);
  if (y !== x) ctx.release(y);
  w.buffer.destroy();
  b?.buffer.destroy();
}

test('rmsNorm matches the CPU reference (row groups of odd sizes, 64- and 256-thread variants)', async () => {
  let seed = 100;
  for (const G of [1, 5, 64, 100, 129, 256, 1000, 4100]) {
    for (const rows of [1, 3]) await checkRms(rows, G, G, 1e-6, seed++);
  }
});

test('rmsNorm: per-head groups over [S, H·hd], in place, bf16 weight, 2-D grid', async () => {
  await checkRms(5, 4 * 24, 24, 1e-6, 1);            // q/k norm: G = head_dim over H heads
  await checkRms(3, 7 * 130, 130, 1e-5, 2);
  await checkRms(4, 300, 300, 1e-6, 3, { inPlace: true });
  await checkRms(2, 2 * 96, 96, 1e-6, 4, { inPlace: true });
  await checkRms(3, 520, 520, 1e-6, 5, { wd: 'bf16' });
  await checkRms(66_000, 2, 2, 1e-6, 6);             // 66 000 groups: more than 65 535 workgroups
});

test('layerNorm matches the CPU reference, with and without bias, in place', async () => {
  let seed = 200;
  for (const G of [1, 5, 64, 129, 300, 2050]) {
    await checkLayer(1, G, G, 1e-5, true, seed++);
    await checkLayer(3, G, G, 1e-5, G % 2 === 0, seed++);
  }
  await checkLayer(4, 3 * 40, 40, 1e-6, true, 1);
  await checkLayer(2, 777, 777, 1e-5, true, 2, true);
  await checkLayer(2, 100, 100, 1e-5, false, 3, true);
});

async function checkAddNorm(kind: 'rms' | 'layer', rows: number, G: number, s: number, withBias: boolean, seed: number): Promise<void> {
  const r = seededUniform(seed);
  const hs = rand(rows * G, r, 2, 0.5);
  const as = rand(rows * G, r, 2);
  const wv = rand(G, r, 1, 1);
  const bv = withBias ? rand(G, r) : undefined;
  const w = uploadF32(ctx, wv, 'w');
  const b = bv ? uploadF32(ctx, bv, 'b') : undefined;
  const h = ctx.upload(hs, [rows, G]);
  const a = ctx.upload(as, [rows, G]);
  const y = addNorm(ctx, kind, h, a, s, rows, w, b, 1e-5);
  const gotH = await ctx.read(h, rows * G);
  const got = await ctx.read(y, rows * G);
  // The CPU op: h += a · s in a Float32Array (one rounding of the float64 value), then the CPU norm.
  const h2 = hs.slice();
  for (let i = 0; i < h2.length; i++) h2[i]! += as[i]! * s;
  for (let i = 0; i < h2.length; i++) {
    const tol = 2 ** -23 * (Math.abs(hs[i]!) + Math.abs(s * as[i]!));
    assert.ok(Math.abs(gotH[i]! - h2[i]!) <= tol, `addNorm ${kind} h[${i}]: ${gotH[i]} vs ${h2[i]}`);
  }
  const ref = kind === 'rms' ? cpuRms(h2, wv, 1e-5) : cpuLayer(h2, wv, bv, 1e-5);
  for (let base = 0; base < ref.length; base += G) {
    let mean = 0, v = 0, mx = 0;
    for (let i = 0; i < G; i++) { mean += h2[base + i]!; mx = Math.max(mx, Math.abs(h2[base + i]!)); }
    mean = kind === 'rms' ? 0 : mean / G;
    for (let i = 0; i < G; i++) v += (h2[base + i]! - mean) ** 2;
    const rs = 1 / Math.sqrt(v / G + 1e-5);
    for (let i = 0; i < G; i++) {
      const j = base + i;
      const add = rs * Math.abs(wv[i]!) * 2 ** -22 * (Math.abs(hs[j]!) + Math.abs(s * as[j]!));
      const tol = (kind === 'rms' ? 4e-6 * Math.abs(ref[j]!) : 4e-6 * (rs * Math.abs(wv[i]!) * mx + (bv ? Math.abs(bv[i]!) : 0))) + add;
      assert.ok(Math.abs(got[j]! - ref[j]!) <= tol, `addNorm ${kind} rows=${rows} G=${G} [${j}]: ${got[j]} vs ${ref[j]}`);
    }
  }
  ctx.release(h, a, y);
  w.buffer.destroy();
  b?.buffer.destroy();
}

test('addNorm: residual add fused into RMSNorm / LayerNorm matches addScaled + the CPU norm (h updated too)', async () => {
  let seed = 300;
  for (const G of [5, 64, 100, 300, 2050]) {
    await checkAddNorm('rms', 1, G, 1, false, seed++);
    await checkAddNorm('rms', 3, G, 0.22, false, seed++);   // Granite's residual multiplier
    await checkAddNorm('layer', 2, G, 1, true, seed++);
    await checkAddNorm('layer', 3, G, 1, false, seed++);
  }
});

test('addNorm refuses aliasing and a bias on RMSNorm', () => {
  const w = uploadF32(ctx, new Float32Array(4).fill(1), 'w');
  const h = ctx.upload(new Float32Array(8), [2, 4]);
  const a = ctx.upload(new Float32Array(8), [2, 4]);
  assert.throws(() => addNorm(ctx, 'rms', h, h, 1, 2, w, undefined, 1e-6), /different buffer/);
  assert.throws(() => addNorm(ctx, 'rms', h, a, 1, 2, w, undefined, 1e-6, h), /must not be x/);
  assert.throws(() => addNorm(ctx, 'rms', h, a, 1, 2, w, w, 1e-6), /no bias/);
  ctx.release(h, a);
  w.buffer.destroy();
});

test('rmsNorm / layerNorm: shapes and errors', async () => {
  const w = uploadF32(ctx, new Float32Array([1, 1, 1]), 'w');
  const x = ctx.upload(new Float32Array(8), [2, 4]);
  assert.throws(() => rmsNorm(ctx, x, 2, w, 1e-6), /do not split into groups of 3/);
  const x2 = ctx.upload(new Float32Array([3, 4, 0, 1, 1, 1]), [6]);   // 1-D x: width = numel / rows
  const y = rmsNorm(ctx, x2, 1, w, 0);
  assert.deepEqual(y.shape, [6]);
  const got = await ctx.read(y);
  const r0 = 1 / Math.sqrt(25 / 3);
  const ref = [3 * r0, 4 * r0, 0, 1, 1, 1];
  for (let i = 0; i < 6; i++) assert.ok(Math.abs(got[i]! - ref[i]!) <= 1e-6, `${i}: ${got[i]} vs ${ref[i]}`);
  ctx.release(x, x2, y);
  w.buffer.destroy();
});
