/**
 * GPU attention (src/backend/webgpu/kernels/attention.ts) against the CPU `attention` on random data: causal prefill,
 * decode (Tq = 1) over long key ranges, GQA (H = 4 with KVH = 2 and 1), sliding windows, sinks (f32, f16, bf16
 * storage), start > 0 with Tq < Tk, dq ≠ dv (incl. MLA's 192/128), head dims that are not multiples of 4 or 64, and
 * queries whose visible range is empty. The split-K ("flash-decoding") path on the same kinds of input: decode over
 * Tk ∈ {1, 63, 64, 65, 1000, 3000} with GQA (forced 64/16/100-key chunks and the automatic plan), windows smaller and
 * larger than a chunk, sinks, MLA dims, Tq = 2 after a prefix (chunks past a query's causal limit), empty ranges; both
 * paths on the same inputs (agree to the same tolerance; the split path is bitwise reproducible); the plan thresholds.
 *
 * Tolerance: |gpu − cpu| ≤ 1e-5 · max|v| per element (max|v| = 1 here). The output is a convex combination of v
 * rows, so a relative error δ in the softmax weights moves it by at most ~δ·max|v|. The CPU works in float64; the GPU
 * in f32: a score q·k·scale over dq ≤ 256 terms carries an error ~√dq·2^-24·Σ|q_d k_d|·scale ≲ 2e-6 for these inputs
 * (|scores| ≲ 10, which is an absolute error in the exponent, i.e. a relative one in the weight), WGSL's f32 exp is
 * allowed 3 + 2|x| ulp (|x| ≲ 20 here: ≲ 3e-6 relative), and the running sums and the final division add a few
 * ulps — ≲ 6e-6 in the worst case a conforming GPU may produce. (Lavapipe measures ≤ 2e-7.) The split path does the same
 * operations grouped differently: per chunk the same tile loop, then one more rescale exp(m_c − M) per chunk in the
 * merge, which replaces (does not add to) the plain path's rescale of that chunk's state by the running max — so the
 * same bound holds, for split vs CPU and for split vs plain alike.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GpuContext } from '../../../src/backend/webgpu/context.js';
import { attentionGpu, attentionSplitPlan } from '../../../src/backend/webgpu/kernels/attention.js';
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
  /** Passed to attentionGpu (undefined: its automatic choice). */
  splitK?: boolean | number;
}

/** Runs the case on the GPU, checks it against the CPU and returns the GPU output. */
async function check(c: Case): Promise<Float32Array> {
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
  const out = attentionGpu(ctx, qg, Tq, H, dq, kg, vg, Tk, KVH, dv, start, { scale, window: c.window, sinks, splitK: c.splitK });
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
  return got;
}

test('causal prefill, GQA H=4 KVH=2, vec4 path', async () => {
  await check({ Tq: 37, H: 4, dq: 32, Tk: 37, KVH: 2, dv: 32, start: 0, seed: 1 });
  await check({ Tq: 1, H: 4, dq: 8, Tk: 1, KVH: 2, dv: 8, start: 0, seed: 2 }); // a single key
});

test('decode over a long cache, MQA (KVH=1), scalar path (dq % 4 ≠ 0), dv ≠ dq', async () => {
  await check({ Tq: 1, H: 4, dq: 18, Tk: 300, KVH: 1, dv: 24, start: 299, seed: 3 });
  // sharp softmax, 40 tiles; the plain path forced (the automatic choice would split this one)
  await check({ Tq: 1, H: 4, dq: 64, Tk: 2500, KVH: 1, dv: 64, start: 2499, qScale: 4, seed: 4, splitK: false });
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

// ---------------------------------------------------------------- split-K ("flash-decoding") path

test('split-K decode over Tk ∈ {1, 63, 64, 65, 1000, 3000} with GQA (forced 64-key chunks and the automatic plan)', async () => {
  for (const [i, Tk] of [1, 63, 64, 65].entries()) {
    await check({ Tq: 1, H: 8, dq: 32, Tk, KVH: 2, dv: 32, start: Tk - 1, seed: 100 + i, splitK: 64 });
  }
  await check({ Tq: 1, H: 8, dq: 32, Tk: 65, KVH: 2, dv: 32, start: 64, seed: 104, splitK: 16 }); // 5 chunks, last = 1 key
  for (const [i, Tk] of [1000, 3000].entries()) {
    assert.ok(attentionSplitPlan(1, 8, Tk, Tk - 1, null), `decode over ${Tk} keys splits`);
    await check({ Tq: 1, H: 8, dq: 64, Tk, KVH: 2, dv: 64, start: Tk - 1, qScale: 4, seed: 105 + i });
  }
  await check({ Tq: 1, H: 4, dq: 20, Tk: 1000, KVH: 1, dv: 12, start: 999, seed: 107, splitK: 100 }); // scalar path, odd chunk
});

test('split-K with sliding windows smaller and larger than a chunk', async () => {
  await check({ Tq: 1, H: 4, dq: 16, Tk: 1000, KVH: 2, dv: 16, start: 999, window: 40, seed: 110, splitK: 64 }); // 1 chunk
  await check({ Tq: 1, H: 4, dq: 16, Tk: 1000, KVH: 2, dv: 16, start: 999, window: 300, seed: 111, splitK: 64 }); // 5
  assert.ok(attentionSplitPlan(1, 4, 1000, 999, 700), 'a 700-key window splits automatically');
  await check({ Tq: 1, H: 4, dq: 16, Tk: 1000, KVH: 2, dv: 16, start: 999, window: 700, seed: 112 });
  // 3 queries, each with its own window start; the first query's range ends before the cache does
  await check({ Tq: 3, H: 4, dq: 16, Tk: 600, KVH: 1, dv: 24, start: 597, window: 200, seed: 113, splitK: 64 });
  await check({ Tq: 4, H: 4, dq: 8, Tk: 200, KVH: 4, dv: 8, start: 196, window: 1, seed: 114, splitK: 64 }); // only itself
});

test('split-K with sinks in f32, f16 and bf16 storage (merged once), incl. a window', async () => {
  await check({ Tq: 1, H: 4, dq: 16, Tk: 700, KVH: 2, dv: 16, start: 699, sinks: 'f32', seed: 120 });
  await check({ Tq: 1, H: 4, dq: 16, Tk: 1, KVH: 1, dv: 16, start: 0, sinks: 'f16', seed: 121, splitK: 64 });
  await check({ Tq: 2, H: 4, dq: 24, Tk: 300, KVH: 2, dv: 24, start: 298, window: 150, sinks: 'bf16', seed: 122, splitK: 64 });
});

test('split-K with MLA head dims (dq = 192, dv = 128)', async () => {
  assert.ok(attentionSplitPlan(1, 4, 1000, 999, null));
  await check({ Tq: 1, H: 4, dq: 192, Tk: 1000, KVH: 4, dv: 128, start: 999, seed: 130 });
  await check({ Tq: 1, H: 2, dq: 192, Tk: 130, KVH: 1, dv: 128, start: 129, seed: 131, splitK: 64 });
});

test('split-K with Tq = 2 after a prefix (the queries have different causal limits; some chunks are empty)', async () => {
  // query 0 sees 64 keys (its 2nd chunk is empty), query 1 sees 65
  await check({ Tq: 2, H: 4, dq: 32, Tk: 65, KVH: 2, dv: 32, start: 63, seed: 140, splitK: 64 });
  assert.ok(attentionSplitPlan(2, 4, 1500, 1498, null));
  await check({ Tq: 2, H: 4, dq: 32, Tk: 1500, KVH: 2, dv: 32, start: 1498, seed: 141 });
  await check({ Tq: 37, H: 2, dq: 16, Tk: 37, KVH: 1, dv: 16, start: 0, seed: 142, splitK: 16 }); // prefill, forced
});

test('split-K: queries with an empty visible range give 0 (with and without sinks)', async () => {
  await check({ Tq: 2, H: 2, dq: 8, Tk: 3, KVH: 1, dv: 8, start: 5, window: 2, seed: 150, splitK: 64 });
  await check({ Tq: 2, H: 2, dq: 8, Tk: 3, KVH: 1, dv: 8, start: 5, window: 2, sinks: 'f32', seed: 151, splitK: true });
});

test('both paths on the same inputs agree (and the split path is deterministic)', async () => {
  const base = { Tq: 2, H: 4, dq: 48, Tk: 777, KVH: 2, dv: 40, start: 775, window: 500, sinks: 'bf16', qScale: 3, seed: 160 } as const;
  const plain = await check({ ...base, splitK: false });
  const outs = [await check({ ...base, splitK: 64 }), await check({ ...base, splitK: 200 }), await check({ ...base })];
  for (const got of outs) {
    let worst = 0;
    for (let i = 0; i < plain.length; i++) worst = Math.max(worst, Math.abs(got[i]! - plain[i]!));
    assert.ok(worst <= 1e-5, `split vs plain: max diff ${worst}`); // same bound as against the CPU (see the header)
  }
  assert.deepEqual(await check({ ...base, splitK: 64 }), outs[0], 'the split path is bitwise reproducible');
});

test('attentionSplitPlan: thresholds', () => {
  // 32-head decode over 4096 keys: 16 chunks of 256 keys → 512 workgroups
  assert.deepEqual(attentionSplitPlan(1, 32, 4096, 4095, null), { chunk: 256, chunks: 16 });
  // few heads: chunks sized for ~1024 workgroups, in whole 64-key tiles, ≥ 256 keys
  assert.deepEqual(attentionSplitPlan(1, 4, 3000, 2999, null), { chunk: 256, chunks: 12 });
  assert.deepEqual(attentionSplitPlan(1, 8, 100000, 99999, null), { chunk: 832, chunks: 121 });
  assert.equal(attentionSplitPlan(512, 32, 512, 0, null), null); // prefill keeps the plain path
  assert.equal(attentionSplitPlan(17, 32, 8192, 8175, null), null); // 544 (query, head) pairs are enough
  assert.equal(attentionSplitPlan(1, 32, 511, 510, null), null); // short cache
  assert.equal(attentionSplitPlan(1, 32, 10000, 9999, 128), null); // a small window bounds the range
  assert.equal(attentionSplitPlan(1, 32, 4096, 4095, null, false), null);
  assert.deepEqual(attentionSplitPlan(1, 32, 10, 9, null, true), { chunk: 64, chunks: 1 });
  assert.deepEqual(attentionSplitPlan(1, 1, 1 << 22, (1 << 22) - 1, null, 1), { chunk: 65, chunks: 64528 }); // ≤ 65535 chunks
  assert.throws(() => attentionSplitPlan(1, 1, 10, 9, null, 0), /positive integer/);
});

test('rejects head counts that are not a multiple of the KV heads', () => {
  const t = ctx.tensor([1, 3, 4]);
  assert.throws(() => attentionGpu(ctx, t, 1, 3, 4, t, t, 1, 2, 4, 0, { scale: 1 }), /multiple/);
  ctx.release(t);
});
