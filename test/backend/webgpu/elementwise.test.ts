/**
 * GPU elementwise kernels (src/backend/webgpu/kernels/elementwise.ts) against the CPU code: addScaled, scaleInPlace,
 * gatedAct (vs `gatedActivation` of src/backend/cpu/activations.ts, float64 math rounded once), embed (every table
 * dtype), copyCols (bit copies, row broadcast), sizes that are not multiples of 256, and a 2-D dispatch grid.
 *
 * Tolerances (u = 2⁻²⁴):
 * - addScaled: h + s·a in f32 (the GPU may fuse it): ≤ 2 roundings, |err| ≤ 2u·(|h| + |s·a|).
 * - scaleInPlace, embed, copyCols: exact (one correctly rounded product, or a copy).
 * - gatedAct: f32 exp has a few-ulp error that grows with |argument| in Vulkan (≤ 3 + 2|x| ulp); for the inputs used
 *   (|g| ≤ 9, α·|g| ≤ 16) the sigmoid is within ~40u relative, the products add ~3u: |err| ≤ 4e-6·|ref| + 1e-7·|u|.
 *   GELU's erf polynomial is the CPU one, its f32 evaluation error is ≲ 1e-6 absolute in erf, i.e.
 *   ≤ 1e-6·|0.5·g·u| on top: |err| ≤ 4e-6·|ref| + 1e-6·|g·u| + 1e-7·|u|.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GpuContext } from '../../../src/backend/webgpu/context.js';
import { uploadWeight } from '../../../src/backend/webgpu/weights.js';
import { addScaled, addSigmoidGated, scaleInPlace, gatedAct, embed, copyCols, type GatedActKind } from '../../../src/backend/webgpu/kernels/elementwise.js';
import { gatedActivation, sigmoid } from '../../../src/backend/cpu/activations.js';
import { seededUniform } from '../../../src/train/model/rng.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../../src/tensor/dtype.js';

let ctx: GpuContext;
before(async () => { ctx = await GpuContext.create(); });
after(() => { ctx.destroy(); });

const U = 2 ** -24;

function rand(n: number, r: () => number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}

test('addScaled and scaleInPlace over odd sizes', async () => {
  const r = seededUniform(1);
  for (const n of [1, 7, 256, 257, 1000]) {
    const hs = rand(n, r, 4), as = rand(n, r, 2);
    const s = n === 7 ? -0.37 : 1.25;
    // One element more than n, to check that nothing past n is touched.
    const h = ctx.upload(Float32Array.from([...hs, 99]), [n + 1]);
    const a = ctx.upload(as, [n]);
    addScaled(ctx, h, a, n, s);
    const got = await ctx.read(h);
    for (let i = 0; i < n; i++) {
      const ref = hs[i]! + s * as[i]!;
      assert.ok(Math.abs(got[i]! - ref) <= 2 * U * (Math.abs(hs[i]!) + Math.abs(s * as[i]!)), `addScaled n=${n} [${i}]: ${got[i]} vs ${ref}`);
    }
    assert.equal(got[n], 99);
    scaleInPlace(ctx, h, n, s);
    const got2 = await ctx.read(h);
    for (let i = 0; i < n; i++) assert.equal(got2[i], Math.fround(got[i]! * Math.fround(s)), `scale n=${n} [${i}]`);
    assert.equal(got2[n], 99);
    ctx.release(h, a);
  }
});

test('addSigmoidGated adds sigmoid(g[t]) · s[t, :] per row (the CPU MoeBlock\'s shared-expert gate)', async () => {
  // f32 exp and one division, then one add: |err| ≤ 8u·(|out| + |s|) covers WGSL's exp error (≤ 3 + 2|x| ulp, |g| ≤ 4).
  const r = seededUniform(3);
  for (const [T, D] of [[1, 5], [3, 64], [7, 129]] as const) {
    const outs = rand(T * D, r, 2), ss = rand(T * D, r, 2), gs = rand(T, r, 4);
    const out = ctx.upload(Float32Array.from([...outs, 99]), [T * D + 1]);
    const sT = ctx.upload(ss, [T, D]);
    const g = ctx.upload(gs, [T]);
    addSigmoidGated(ctx, out, sT, g, T, D);
    const got = await ctx.read(out);
    for (let i = 0; i < T * D; i++) {
      const ref = outs[i]! + sigmoid(gs[Math.floor(i / D)]!) * ss[i]!;
      assert.ok(Math.abs(got[i]! - ref) <= 8 * U * (Math.abs(outs[i]!) + Math.abs(ss[i]!)) + 1e-7, `T=${T} D=${D} [${i}]: ${got[i]} vs ${ref}`);
    }
    assert.equal(got[T * D], 99);
    ctx.release(out, sT, g);
  }
});

test('addScaled over more than 65535·256 elements (2-D grid)', async () => {
  const n = 65535 * 256 + 300;
  const hs = new Float32Array(n), as = new Float32Array(n);
  for (let i = 0; i < n; i++) { hs[i] = i % 1000; as[i] = (i % 7) - 3; }
  const h = ctx.upload(hs), a = ctx.upload(as);
  addScaled(ctx, h, a, n, 0.5);
  const got = await ctx.read(h);
  for (let i = 0; i < n; i++) if (got[i] !== hs[i]! + 0.5 * as[i]!) assert.fail(`[${i}]: ${got[i]} vs ${hs[i]! + 0.5 * as[i]!}`);
  ctx.release(h, a);
});

for (const kind of ['silu', 'gelu', 'gpt_oss'] as const) {
  test(`gatedAct ${kind} matches gatedActivation`, async () => {
    const r = seededUniform(kind.length);
    const n = 1037;
    const gs = rand(n, r, 9), us = rand(n, r, 9);
    gs[0] = 0; gs[1] = 7; gs[2] = 7.5; us[3] = -8; us[4] = 8; // around the gpt_oss clamps
    const g = ctx.upload(gs), u = ctx.upload(us);
    const opts = kind === 'gpt_oss' ? { alpha: 1.5, limit: 6.5 } : undefined;
    gatedAct(ctx, g, u, n, kind as GatedActKind, opts?.alpha, opts?.limit);
    const got = await ctx.read(g);
    const ref = gatedActivation(kind, Float32Array.from(gs), us, opts);
    for (let i = 0; i < n; i++) {
      const tol = 4e-6 * Math.abs(ref[i]!) + 1e-7 * Math.abs(us[i]!) + (kind === 'gelu' ? 1e-6 * Math.abs(gs[i]! * us[i]!) : 0);
      assert.ok(Math.abs(got[i]! - ref[i]!) <= tol, `${kind} [${i}] g=${gs[i]} u=${us[i]}: ${got[i]} vs ${ref[i]}`);
    }
    ctx.release(g, u);
  });
}

test('gatedAct gpt_oss default alpha / limit', async () => {
  const gs = Float32Array.from([-20, -1, 0.5, 3, 6.9, 7, 12]), us = Float32Array.from([10, -10, 0.25, -3, 7.5, -7.5, 1]);
  const g = ctx.upload(gs), u = ctx.upload(us);
  gatedAct(ctx, g, u, gs.length, 'gpt_oss');
  const got = await ctx.read(g);
  const ref = gatedActivation('gpt_oss', Float32Array.from(gs), us);
  for (let i = 0; i < gs.length; i++) assert.ok(Math.abs(got[i]! - ref[i]!) <= 4e-6 * Math.abs(ref[i]!) + 1e-7 * Math.abs(us[i]!), `[${i}]: ${got[i]} vs ${ref[i]}`);
  ctx.release(g, u);
});

test('embed gathers scaled rows for every table dtype', async () => {
  const r = seededUniform(5);
  const V = 13, D = 37;
  const raw = rand(V * D, r);
  const idsA = Int32Array.from([0, 12, 5, 5, 7, 1, 12, 3, 0]);
  const n = idsA.length;
  for (const dtype of ['f32', 'f16', 'bf16'] as const) {
    let vals: Float32Array;
    let table;
    if (dtype === 'bf16') {
      const bits = Uint16Array.from(raw, (v) => f32ToBf16(v));
      vals = Float32Array.from(bits, (b) => bf16ToF32(b));
      table = uploadWeight(ctx, { name: 'emb', dtype: 'bf16', shape: [V, D], data: bits });
    } else {
      vals = dtype === 'f16' ? Float32Array.from(raw, (v) => f16ToF32(f32ToF16(v))) : raw;
      table = uploadWeight(ctx, { name: 'emb', dtype: 'f32', shape: [V, D], data: vals }, { f16: dtype === 'f16' });
    }
    assert.equal(table.dtype, dtype);
    const ids = ctx.upload(idsA);
    const mult = dtype === 'f32' ? 1 : Math.sqrt(D);
    const out = embed(ctx, table, ids, n, D, mult);
    assert.deepEqual(out.shape, [n, D]);
    const got = await ctx.read(out);
    for (let t = 0; t < n; t++) {
      for (let c = 0; c < D; c++) {
        assert.equal(got[t * D + c], Math.fround(vals[idsA[t]! * D + c]! * Math.fround(mult)), `${dtype} token ${t} col ${c}`);
      }
    }
    ctx.release(ids, out);
    table.buffer.destroy();
  }
});

test('copyCols splits, assembles and broadcasts columns (bit copies)', async () => {
  const rows = 5, srcW = 11;
  const src = new Float32Array(rows * srcW);
  for (let i = 0; i < src.length; i++) src[i] = i + 0.5;
  src[3] = NaN; src[4] = -0; // bit copies: NaN and −0 survive
  const s = ctx.upload(src, [rows, srcW]);
  // Split: columns [2, 9) of every row into a [rows, 7] tensor.
  const d1 = ctx.upload(new Float32Array(rows * 7).fill(-1), [rows, 7]);
  copyCols(ctx, s, srcW, 2, d1, 7, 0, 7, rows);
  // Assemble into the middle of wider rows, leaving the other columns alone.
  const d2 = ctx.upload(new Float32Array(rows * 10).fill(-1), [rows, 10]);
  copyCols(ctx, s, srcW, 0, d2, 10, 4, 5, rows);
  // Broadcast: 3 destination rows per source row (one rope key over 3 heads), 15 rows from 5.
  const d3 = ctx.upload(new Float32Array(15 * 4).fill(-1), [15, 4]);
  copyCols(ctx, s, srcW, 7, d3, 4, 0, 4, 15, 3);
  const [g1, g2, g3] = [await ctx.read(d1), await ctx.read(d2), await ctx.read(d3)];
  const same = (a: number, b: number): boolean => Object.is(a, b);
  for (let r = 0; r < rows; r++) for (let c = 0; c < 7; c++) assert.ok(same(g1[r * 7 + c]!, src[r * srcW + 2 + c]!), `split ${r},${c}`);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < 10; c++) {
      const want = c >= 4 && c < 9 ? src[r * srcW + c - 4]! : -1;
      assert.ok(same(g2[r * 10 + c]!, want), `assemble ${r},${c}: ${g2[r * 10 + c]} vs ${want}`);
    }
  }
  for (let r = 0; r < 15; r++) for (let c = 0; c < 4; c++) assert.ok(same(g3[r * 4 + c]!, src[Math.floor(r / 3) * srcW + 7 + c]!), `broadcast ${r},${c}`);
  // i32 tensors copy as well.
  const si = ctx.upload(Int32Array.from([1, -2, 3, -4, 5, -6]), [3, 2]);
  const di = ctx.tensor([3, 1], 'i32');
  copyCols(ctx, si, 2, 1, di, 1, 0, 1, 3);
  assert.deepEqual([...(await ctx.readI32(di))], [-2, -4, -6]);
  assert.throws(() => copyCols(ctx, s, srcW, 8, d1, 7, 0, 7, rows), /exceed widths/);
  assert.throws(() => copyCols(ctx, s, srcW, 0, s, srcW, 0, 2, rows), /different buffers/);
  ctx.release(s, d1, d2, d3, si, di);
});
