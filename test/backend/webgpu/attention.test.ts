/**
 * GPU attention (src/backend/webgpu/kernels/attention.ts) against the CPU `attention` on random data: causal prefill,
 * decode (Tq = 1) over long key ranges, GQA (H = 4 with KVH = 2 and 1), sliding windows, sinks (f32, f16, bf16
 * storage), start > 0 with Tq < Tk, dq ≠ dv (incl. MLA's 192/128), head dims that are not multiples of 4 or 64, and
 * queries whose visible range is empty.
 *
 * Tolerance: |gpu − cpu| ≤ 1e-5 · max|v| per element (max|v| = 1 here). The output is a convex combination of v
 * rows, so a relative error δ in the softmax weights moves it by at most ~δ·max|v|. The CPU works in float64; the GPU
 * in f32: a score q·k·scale over dq ≤ 256 terms carries an error ~√dq·2^-24·Σ|q_d k_d|·scale ≲ 2e-6 for these inputs
 * (|scores| ≲ 10, which is an absolute error in the exponent, i.e. a relative one in the weight), WGSL's f32 exp is
 * allowed 3 + 2|x| ulp (|x| ≲ 20 here: ≲ 3e-6 relative), and the running sums and the final division add a few
 * ulps — ≲ 6e-6 in the worst case a conforming GPU may produce. (Lavapipe measures ≤ 2e-7.)
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GpuContext } from '../../../src/backend/webgpu/context.js';
import { attentionGpu } from '../../../src/backend/webgpu/kernels/attention.js';
import { uploadF32, uploadWeight, type GpuWeight } from '../../../src/backend/webgpu/weights.js';
import { attention } from '../../../src/backend/cpu/attention.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../../src/tensor/dtype.js';
import { seededUniform } from '../../../src/train/model/rng.js';

let ctx: GpuContext;
before(async () => { ctx = await GpuContext.create(); });
after(() => { ctx.destroy(); });

function rand(n: number, seed: number, scale = 1): Float32Array {
  const r = seededUniform(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

interface Case {
  Tq: number; H: number; dq: number; Tk: number; KVH: number; dv: number; start: number;
  window?: number | null; sinks?: 'f32' | 'f16' | 'bf16'; qScale?: number; seed: number;
}

async function check(c: Case): Promise<void> {
  const { Tq, H, dq, Tk, KVH, dv, start } = c;
  const q = rand(Tq * H * dq, c.seed, c.qScale ?? 1);
  const k = rand(Tk * KVH * dq, c.seed + 1);
  const v = rand(Tk * KVH * dv, c.seed + 2);
  let sinksHost: Float32Array | undefined;
  let sinks: GpuWeight | undefined;
  if (c.sinks) {
    const raw = rand(H, c.seed + 3, 3);
    if (c.sinks === 'f32') {
      sinksHost = raw;
      sinks = uploadF32(ctx, raw, 'sinks');
    } else if (c.sinks === 'bf16') {
      const bits = Uint16Array.from(raw, (x) => f32ToBf16(x));
      sinksHost = Float32Array.from(bits, (b) => bf16ToF32(b));
      sinks = uploadWeight(ctx, { name: 'sinks', dtype: 'bf16', shape: [H], data: bits });
    } else {
      const bits = Uint16Array.from(raw, (x) => f32ToF16(x));
      sinksHost = Float32Array.from(bits, (b) => f16ToF32(b));
      // uploadWeight keeps 1-D weights f32, so build the f16 weight directly.
      sinks = { buffer: ctx.createStatic(bits, 'sinks'), dtype: 'f16', shape: [H], name: 'sinks' };
    }
  }
  const scale = 1 / Math.sqrt(dq);
  const want = attention(q, Tq, H, dq, k, v, Tk, KVH, dv, start, { scale, window: c.window, sinks: sinksHost });
  const qg = ctx.upload(q, [Tq, H, dq]);
  const kg = ctx.upload(k, [Tk, KVH, dq]);
  const vg = ctx.upload(v, [Tk, KVH, dv]);
  const out = attentionGpu(ctx, qg, Tq, H, dq, kg, vg, Tk, KVH, dv, start, { scale, window: c.window, sinks });
  assert.deepEqual(out.shape, [Tq, H, dv]);
  const got = await ctx.read(out);
  ctx.release(qg, kg, vg, out);
  if (sinks) sinks.buffer.destroy();
  const tol = 1e-5; // · max|v| = 1 (see the header)
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    assert.ok(Number.isFinite(got[i]), `non-finite output at ${i}`);
    worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
  }
  assert.ok(worst <= tol, `${JSON.stringify(c)}: max |gpu − cpu| = ${worst} > ${tol}`);
}

test('causal prefill, GQA H=4 KVH=2, vec4 path', async () => {
  await check({ Tq: 37, H: 4, dq: 32, Tk: 37, KVH: 2, dv: 32, start: 0, seed: 1 });
  await check({ Tq: 1, H: 4, dq: 8, Tk: 1, KVH: 2, dv: 8, start: 0, seed: 2 }); // a single key
});

test('decode over a long cache, MQA (KVH=1), scalar path (dq % 4 ≠ 0), dv ≠ dq', async () => {
  await check({ Tq: 1, H: 4, dq: 18, Tk: 300, KVH: 1, dv: 24, start: 299, seed: 3 });
  await check({ Tq: 1, H: 4, dq: 64, Tk: 2500, KVH: 1, dv: 64, start: 2499, qScale: 4, seed: 4 }); // sharp softmax, 40 tiles
});

test('prefill with Tk ≈ 300 and a chunk of queries after a prefix (start > 0, Tq < Tk)', async () => {
  await check({ Tq: 300, H: 4, dq: 16, Tk: 300, KVH: 2, dv: 16, start: 0, seed: 5 });
  await check({ Tq: 7, H: 4, dq: 20, Tk: 130, KVH: 2, dv: 12, start: 123, seed: 6 });
});

test('sliding window (with and without a prefix, window larger than the range)', async () => {
  await check({ Tq: 5, H: 4, dq: 16, Tk: 100, KVH: 2, dv: 16, start: 95, window: 16, seed: 7 });
  await check({ Tq: 90, H: 2, dq: 12, Tk: 90, KVH: 1, dv: 10, start: 0, window: 70, seed: 8 });
  await check({ Tq: 3, H: 2, dq: 12, Tk: 10, KVH: 2, dv: 10, start: 7, window: 1000, seed: 9 });
  await check({ Tq: 4, H: 4, dq: 8, Tk: 200, KVH: 4, dv: 8, start: 196, window: 1, seed: 10 }); // sees only itself
});

test('sinks in f32, f16 and bf16 storage (window + GQA)', async () => {
  await check({ Tq: 6, H: 4, dq: 16, Tk: 80, KVH: 2, dv: 16, start: 74, window: 32, sinks: 'f32', seed: 11 });
  await check({ Tq: 1, H: 4, dq: 16, Tk: 1, KVH: 1, dv: 16, start: 0, sinks: 'f16', seed: 12 });
  await check({ Tq: 33, H: 4, dq: 24, Tk: 33, KVH: 2, dv: 24, start: 0, sinks: 'bf16', seed: 13 });
});

test('MLA head dims (dq = 192, dv = 128) and awkward dims (dv = 65 / 1, dq = 67 / 1, MHA)', async () => {
  await check({ Tq: 3, H: 2, dq: 192, Tk: 70, KVH: 2, dv: 128, start: 67, seed: 14 });
  await check({ Tq: 2, H: 3, dq: 67, Tk: 129, KVH: 3, dv: 65, start: 127, seed: 15 });
  await check({ Tq: 5, H: 1, dq: 1, Tk: 5, KVH: 1, dv: 1, start: 0, seed: 16 });
  await check({ Tq: 2, H: 2, dq: 256, Tk: 65, KVH: 1, dv: 256, start: 63, qScale: 2, seed: 17 });
});

test('queries with an empty visible range give 0 (with and without sinks), as on the CPU', async () => {
  await check({ Tq: 2, H: 2, dq: 8, Tk: 3, KVH: 1, dv: 8, start: 5, window: 2, seed: 18 });
  await check({ Tq: 2, H: 2, dq: 8, Tk: 3, KVH: 1, dv: 8, start: 5, window: 2, sinks: 'f32', seed: 19 });
});

test('rejects head counts that are not a multiple of the KV heads', () => {
  const t = ctx.tensor([1, 3, 4]);
  assert.throws(() => attentionGpu(ctx, t, 1, 3, 4, t, t, 1, 2, 4, 0, { scale: 1 }), /multiple/);
  ctx.release(t);
});
