/**
 * GPU RoPE (src/backend/webgpu/kernels/rope.ts) against the CPU `rope()` / `applyRope`: half and interleaved
 * layouts, a rotary offset inside the head (MLA), partial rotary, YaRN and longrope tables (short and long choice),
 * awkward sizes (odd head counts, half = 3, T = 1) and large positions.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GpuContext } from '../../../src/backend/webgpu/context.js';
import { applyRopeGpu, ropeCosSin, uploadRopeCosSin } from '../../../src/backend/webgpu/kernels/rope.js';
import { rope, ropeTable, type RopeSpec, type RopeTable } from '../../../src/nn/rope.js';
import { seededF32 } from '../../helpers/random.js';

let ctx: GpuContext;
before(async () => { ctx = await GpuContext.create(); });
after(() => { ctx.destroy(); });

/**
 * Tolerance: the CPU forms x1·c − x2·s exactly in float64 and rounds once to f32; the GPU rounds each product and
 * the difference in f32 (or fuses one into an fma): at most ~1.5 ulp of max(|x1|, |x2|)·max|c, s|, i.e.
 * ≤ 2^-23·scale·max|x|. We allow 2^-21·max(1, scale)·max|x| (inputs are in [-1, 1)).
 */
async function check(
  table: RopeTable, T: number, H: number, headDim: number, positions: number[], offset: number, seed: number,
): Promise<void> {
  const half = table.invFreq.length;
  const x = seededF32(T * H * headDim, seed);
  const want = x.slice();
  rope(table, want, T, H, headDim, positions, offset);
  const xg = ctx.upload(x, [T, H, headDim]);
  const cs = uploadRopeCosSin(ctx, table, positions);
  applyRopeGpu(ctx, xg, T, H, headDim, cs, half, table.interleaved, offset);
  const got = await ctx.read(xg);
  ctx.release(xg, cs);
  const scale = Math.max(1, table.attentionScale, table.long?.attentionScale ?? 0);
  const tol = 2 ** -21 * scale;
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
  assert.ok(worst <= tol, `max |gpu − cpu| = ${worst} > ${tol}`);
  // Dims outside the rotated range are untouched (bit-exact).
  for (let t = 0; t < T * H; t++) {
    for (let d = 0; d < headDim; d++) {
      if (d >= offset && d < offset + 2 * half) continue;
      assert.equal(got[t * headDim + d], x[t * headDim + d]);
    }
  }
}

const spec = (over: Partial<RopeSpec>): RopeSpec => ({ type: 'default', theta: 10000, dim: 16, interleaved: false, ...over });
const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);

test('ropeCosSin reproduces the CPU rotation exactly (unit vectors), incl. longrope short/long choice', () => {
  const tables: Array<[RopeTable, number[]]> = [
    [ropeTable(spec({ dim: 12 }), 4096), [0, 1, 5, 4095]],
    [ropeTable(spec({ type: 'yarn', dim: 8, factor: 4, originalMaxPositions: 512, mscale: 1, mscaleAllDim: 0.707 }), 2048), [3, 2000]],
    [ropeTable(spec({ type: 'longrope', dim: 6, factor: 8, originalMaxPositions: 100, shortFactor: [1, 1.5, 2], longFactor: [3, 5, 9] }), 800), [2, 99]],
    [ropeTable(spec({ type: 'longrope', dim: 6, factor: 8, originalMaxPositions: 100, shortFactor: [1, 1.5, 2], longFactor: [3, 5, 9] }), 800), [2, 150]],
  ];
  for (const [table, positions] of tables) {
    const half = table.invFreq.length;
    const T = positions.length;
    const cs = ropeCosSin(table, positions);
    assert.equal(cs.length, T * half * 2);
    // x = (1, 0) in every pair: the CPU rotation yields exactly (c, s).
    const x = new Float32Array(T * 2 * half);
    for (let t = 0; t < T; t++) for (let i = 0; i < half; i++) x[t * 2 * half + i] = 1;
    rope(table, x, T, 1, 2 * half, positions);
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < half; i++) {
        assert.equal(cs[(t * half + i) * 2], x[t * 2 * half + i], `cos t=${t} i=${i}`);
        assert.equal(cs[(t * half + i) * 2 + 1], x[t * 2 * half + half + i], `sin t=${t} i=${i}`);
      }
    }
  }
});

test('default rope, half layout, full head, awkward sizes', async () => {
  await check(ropeTable(spec({ dim: 16 }), 4096), 5, 3, 16, [7, 8, 9, 10, 11], 0, 1);
  await check(ropeTable(spec({ dim: 6 }), 4096), 1, 1, 6, [3000], 0, 2); // half = 3, T = 1, large position
  await check(ropeTable(spec({ dim: 64 }), 4096), 67, 5, 64, range(67, 130), 0, 3); // T·H·half not a multiple of 64
});

test('interleaved layout and partial rotary', async () => {
  await check(ropeTable(spec({ dim: 16, interleaved: true }), 4096), 9, 2, 16, range(9, 1), 0, 4);
  await check(ropeTable(spec({ dim: 10, interleaved: true }), 4096), 4, 3, 24, [0, 5, 77, 1000], 0, 5); // rotary dim < headDim
  await check(ropeTable(spec({ dim: 8 }), 4096), 3, 2, 20, [1, 2, 3], 0, 6);
});

test('rotary offset inside the head (MLA: nope dims then rope dims)', async () => {
  await check(ropeTable(spec({ dim: 8, interleaved: true }), 4096), 6, 4, 24, range(6, 40), 16, 7);
  await check(ropeTable(spec({ dim: 6 }), 4096), 2, 3, 13, [11, 12], 5, 8); // offset in the middle, odd headDim
});

test('YaRN and longrope tables (scaled cos/sin; longrope short and long)', async () => {
  const yarn = ropeTable(spec({ type: 'yarn', dim: 32, factor: 40, originalMaxPositions: 4096, betaFast: 32, betaSlow: 1, interleaved: true }), 163840);
  assert.notEqual(yarn.attentionScale, 1);
  await check(yarn, 5, 2, 48, [0, 1, 4095, 50000, 163839], 16, 9);
  const lr = spec({
    type: 'longrope', dim: 8, factor: 32, originalMaxPositions: 64,
    shortFactor: [1, 1.1, 1.3, 2], longFactor: [2, 4, 8, 16],
  });
  const table = ropeTable(lr, 2048);
  assert.ok(table.long);
  await check(table, 4, 3, 8, [0, 10, 20, 63], 0, 10); // max + 1 = 64 ≤ threshold: short table
  await check(table, 4, 3, 8, [0, 10, 20, 64], 0, 11); // max + 1 = 65 > threshold: long table
});

test('offset + rotated dims beyond headDim is rejected', () => {
  const x = ctx.tensor([1, 1, 8]);
  const cs = ctx.tensor([1, 4, 2]);
  assert.throws(() => applyRopeGpu(ctx, x, 1, 1, 8, cs, 4, false, 2), /exceed headDim/);
  ctx.release(x, cs);
});
