/**
 * The fused q/k preparation (src/backend/webgpu/kernels/qk-norm-rope.ts, through WebGpuOps.qkNormRope) against a
 * float64 reference: per-head RMSNorm (optional) then RoPE from the same cos/sin table, on q and k at once. Cases:
 * half and interleaved layouts, partial rotary (normalised but unrotated tail dims), head dims 16 … 1024 (the
 * kernel's limit) and 1040 (the unfused fallback), T = 1 … 2200 (a grid folded past 65535 workgroups), GQA head counts.
 * `qkvToCache` (the fused q/k/v projection's output → q and the KV cache rows) on both backends against the same
 * reference, with a cache that already holds rows and has to grow.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebGpuOps } from '../../../src/backend/webgpu/webgpu-ops.js';
import { CpuOps } from '../../../src/backend/cpu/cpu-ops.js';
import type { DeviceOps } from '../../../src/backend/device-ops.js';
import { qkNormRopeGpu, QK_NORM_ROPE_MAX_HD } from '../../../src/backend/webgpu/kernels/qk-norm-rope.js';
import { ropeCosSin, ropeTable } from '../../../src/nn/rope.js';
import { seededF32 } from '../../helpers/random.js';

let ops: WebGpuOps;
before(async () => { ops = await WebGpuOps.create(); });
after(() => { ops.ctx.destroy(); });

interface Case { T: number; Hq: number; Hk: number; hd: number; rot: number; interleaved: boolean; norm: boolean; seed: number }

/** float64 RMSNorm of each hd-head with weight w (when given), then rotation of dims [0, 2·half) by the f32 table. */
function reference(x: Float32Array, T: number, H: number, hd: number, cs: Float32Array, half: number, interleaved: boolean,
  w: Float32Array | undefined, eps: number): Float64Array {
  const y = Float64Array.from(x);
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      const base = (t * H + h) * hd;
      if (w) {
        let s = 0;
        for (let i = 0; i < hd; i++) s += y[base + i]! ** 2;
        const r = 1 / Math.sqrt(s / hd + eps);
        for (let i = 0; i < hd; i++) y[base + i] = y[base + i]! * r * w[i]!;
      }
      for (let i = 0; i < half; i++) {
        const c = cs[(t * half + i) * 2]!;
        const s = cs[(t * half + i) * 2 + 1]!;
        const a = base + (interleaved ? 2 * i : i);
        const b = interleaved ? a + 1 : a + half;
        const x1 = y[a]!;
        const x2 = y[b]!;
        y[a] = x1 * c - x2 * s;
        y[b] = x2 * c + x1 * s;
      }
    }
  }
  return y;
}

/**
 * Tolerance: 2^-17 · max|reference| (≈ 7.6e-6 relative to the largest output). The f32 sum of hd ≤ 1040 squares
 * (≤ 17 strided terms per thread, then a 6-level tree, or 256 threads for the fallback) has a relative error below
 * ~25 · 2^-24 ≈ 1.5e-6; sqrt, the reciprocal and two products add a few ulp, the rotation ~2 ulp of its inputs.
 */
async function check(c: Case): Promise<void> {
  const { T, Hq, Hk, hd, rot, interleaved, norm, seed } = c;
  const table = ropeTable({ type: 'default', theta: 10000, dim: rot, interleaved }, 8192);
  const half = table.invFreq.length;
  const positions = Array.from({ length: T }, (_, i) => 3 + 7 * i);
  const cs = ropeCosSin(table, positions);
  const q = seededF32(T * Hq * hd, seed, 2);
  const k = seededF32(T * Hk * hd, seed + 1, 2);
  const wq = seededF32(hd, seed + 2, 1.5);
  const wk = seededF32(hd, seed + 3, 1.5);
  const eps = 1e-6;
  const ctx = ops.ctx;
  const qg = ctx.upload(q, [T, Hq, hd]);
  const kg = ctx.upload(k, [T, Hk, hd]);
  const csg = ctx.upload(cs, [T, half, 2]);
  const wqg = ops.vector(wq, 'q_norm');
  const wkg = ops.vector(wk, 'k_norm');
  ops.qkNormRope(qg, kg, T, Hq, Hk, hd, csg, half, interleaved, norm ? { q: wqg, k: wkg, eps } : undefined);
  const gotQ = await ctx.read(qg, T * Hq * hd);
  const gotK = await ctx.read(kg, T * Hk * hd);
  ctx.release(qg, kg, csg);
  for (const [name, got, x, H, w] of [['q', gotQ, q, Hq, wq], ['k', gotK, k, Hk, wk]] as const) {
    const want = reference(x, T, H, hd, cs, half, interleaved, norm ? w : undefined, eps);
    let max = 0;
    for (const v of want) max = Math.max(max, Math.abs(v));
    const tol = 2 ** -17 * max;
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    assert.ok(worst <= tol, `${JSON.stringify(c)} ${name}: max |gpu − float64| = ${worst} > ${tol}`);
    if (!norm) {
      // Without the norm, the dims past the rotated ones are untouched (bit-exact).
      for (let r = 0; r < T * H; r++) for (let d = 2 * half; d < hd; d++) assert.equal(got[r * hd + d], x[r * hd + d]);
    }
  }
}

test('per-head RMSNorm + RoPE on q and k in one dispatch, half layout (Qwen3 shapes)', async () => {
  await check({ T: 3, Hq: 8, Hk: 2, hd: 128, rot: 128, interleaved: false, norm: true, seed: 1 });
  await check({ T: 1, Hq: 32, Hk: 4, hd: 64, rot: 64, interleaved: false, norm: true, seed: 2 });
});

test('RoPE only (no q/k norm), interleaved and half layouts', async () => {
  await check({ T: 5, Hq: 4, Hk: 4, hd: 64, rot: 64, interleaved: true, norm: false, seed: 3 });
  await check({ T: 2, Hq: 6, Hk: 3, hd: 32, rot: 32, interleaved: false, norm: false, seed: 4 });
});

test('partial rotary: the tail dims are normalised but not rotated', async () => {
  await check({ T: 4, Hq: 3, Hk: 1, hd: 96, rot: 32, interleaved: false, norm: true, seed: 5 });
  await check({ T: 2, Hq: 2, Hk: 2, hd: 80, rot: 16, interleaved: true, norm: false, seed: 6 });
});

test('head dims past one element per thread, up to the kernel limit, and the unfused fallback beyond it', async () => {
  await check({ T: 2, Hq: 2, Hk: 1, hd: 256, rot: 256, interleaved: false, norm: true, seed: 7 });
  await check({ T: 1, Hq: 1, Hk: 1, hd: QK_NORM_ROPE_MAX_HD, rot: 64, interleaved: false, norm: true, seed: 8 });
  await check({ T: 2, Hq: 2, Hk: 1, hd: QK_NORM_ROPE_MAX_HD + 16, rot: 128, interleaved: false, norm: true, seed: 9 });
});

test('more (token, head) pairs than 65535 workgroups: the grid folds', async () => {
  await check({ T: 2200, Hq: 28, Hk: 4, hd: 16, rot: 16, interleaved: false, norm: true, seed: 10 });
});

test('bad arguments are refused', () => {
  const ctx = ops.ctx;
  const q = ctx.tensor([1, 2, 8]);
  const cs = ctx.tensor([1, 4, 2]);
  assert.throws(() => qkNormRopeGpu(ctx, q, q, 1, 1, 1, 8, cs, 5, false), /rotated dims exceed/);
  assert.throws(() => qkNormRopeGpu(ctx, q, q, 1, 1, 1, QK_NORM_ROPE_MAX_HD + 8, cs, 4, false), /exceeds/);
  const w = ops.vector(new Float32Array(4), 'short');
  assert.throws(() => qkNormRopeGpu(ctx, q, q, 1, 1, 1, 8, cs, 4, false, { q: w, k: w, eps: 1e-6 }), /expected f32 \[8\]/);
  ctx.release(q, cs);
});

/**
 * qkvToCache on a backend: qkv[T, (Hq + 2Hk)·hd] with a cache already holding `pre` rows (initial capacity 64, so
 * pre + T > 64 makes it grow). q and the new k rows against the float64 reference (tolerance of `check`), the new
 * v rows and the `pre` old rows bit-exact.
 */
async function checkQkv<H, W>(o: DeviceOps<H, W, unknown>, c: Case & { pre: number }): Promise<void> {
  const { T, Hq, Hk, hd, rot, interleaved, norm, seed, pre } = c;
  const table = ropeTable({ type: 'default', theta: 10000, dim: rot, interleaved }, 8192);
  const half = table.invFreq.length;
  const positions = Array.from({ length: T }, (_, i) => pre + i);
  const cs = ropeCosSin(table, positions);
  const W = (Hq + 2 * Hk) * hd;
  const kw = Hk * hd;
  const qkv = seededF32(T * W, seed, 2);
  const wq = seededF32(hd, seed + 2, 1.5);
  const wk = seededF32(hd, seed + 3, 1.5);
  const oldK = seededF32(pre * kw, seed + 4);
  const oldV = seededF32(pre * kw, seed + 5);
  const eps = 1e-6;
  const cache = o.newCache([{ k: kw, v: kw }], 1);
  const lc = cache.layers[0]![0]!;
  lc.append(o.upload(oldK, [pre, kw]), o.upload(oldV, [pre, kw]), pre);
  const nq = norm ? { q: o.vector(wq, 'q_norm'), k: o.vector(wk, 'k_norm'), eps } : undefined;
  const qg = o.qkvToCache(o.upload(qkv, [T, W]), T, Hq, Hk, hd, o.upload(cs, [T, half, 2]), half, interleaved, lc, nq);
  assert.equal(lc.length, pre + T);
  const gotQ = await o.read(qg, T * Hq * hd);
  const gotK = await o.read(lc.k, (pre + T) * kw);
  const gotV = await o.read(lc.v, (pre + T) * kw);
  const part = (from: number, width: number): Float32Array => {
    const a = new Float32Array(T * width);
    for (let t = 0; t < T; t++) a.set(qkv.subarray(t * W + from, t * W + from + width), t * width);
    return a;
  };
  const parts: [string, Float32Array, Float64Array, number][] = [
    ['q', gotQ, reference(part(0, Hq * hd), T, Hq, hd, cs, half, interleaved, norm ? wq : undefined, eps), 0],
    ['k', gotK, reference(part(Hq * hd, kw), T, Hk, hd, cs, half, interleaved, norm ? wk : undefined, eps), pre * kw],
  ];
  for (const [name, got, want, off] of parts) {
    let max = 0;
    for (const v of want) max = Math.max(max, Math.abs(v));
    const tol = 2 ** -17 * max;
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[off + i]! - want[i]!));
    assert.ok(worst <= tol, `${o.name} ${JSON.stringify(c)} ${name}: max |got − float64| = ${worst} > ${tol}`);
  }
  assert.deepEqual(gotV.subarray(pre * kw), part(Hq * hd + kw, kw), 'new v rows');
  assert.deepEqual(gotK.subarray(0, pre * kw), oldK, 'old k rows');
  assert.deepEqual(gotV.subarray(0, pre * kw), oldV, 'old v rows');
  cache.release();
}

test('qkvToCache: fused projection output → q and KV cache rows (per-head norm, none, partial rotary, growth), GPU and CPU', async () => {
  const cpu = new CpuOps();
  const cases = [
    { T: 1, Hq: 8, Hk: 2, hd: 64, rot: 64, interleaved: false, norm: true, seed: 21, pre: 17 },
    { T: 5, Hq: 4, Hk: 4, hd: 32, rot: 32, interleaved: true, norm: false, seed: 22, pre: 62 },   // grows past 64 rows
    { T: 3, Hq: 6, Hk: 2, hd: 96, rot: 32, interleaved: false, norm: true, seed: 23, pre: 0 },    // partial rotary
    { T: 2, Hq: 2, Hk: 1, hd: QK_NORM_ROPE_MAX_HD + 16, rot: 64, interleaved: false, norm: true, seed: 24, pre: 3 }, // fallback
  ];
  for (const c of cases) {
    await checkQkv(ops, c);
    await checkQkv(cpu, c);
  }
});
