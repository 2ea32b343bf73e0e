/**
 * GPU MoE experts (src/backend/webgpu/kernels/moe.ts and its parts moe-permute.ts, grouped-gemm.ts, moe-combine.ts)
 * against the CPU `runExperts` of src/moe/experts.ts (plain-TS linear: float64 dot products rounded once) on the same
 * weights, routings and activations.
 *
 * Every moeExpertsGpu case runs twice: with the tiled-GEMM path forced (opts.path = 'gemm') and with the default
 * choice (the GEMV path of grouped-gemv.ts for T·k ≤ 64 slots, the GEMM above).
 * Covered: E ∈ {1, 4, 16}, T ∈ {1, 3, 37}, k ∈ {1, 2, 4} (with E = 1, k > 1 repeats expert 0 — legal for the CPU
 * path, and a test of duplicate slots); experts with zero tokens; all tokens to one expert (37 rows = two tiles of
 * 32); every activation (silu, gelu, GPT-OSS with its clamps actually hit); with and without each bias; f32, f16 and
 * bf16 weights (f16 / bf16 compared against the CPU on the same rounded values: f16 as f32 values, bf16 through the
 * CPU's bf16 path); D = 72 and F = 100 so neither is a multiple of the 64-column / 16-deep tiles; out-of-range
 * expert ids (contribute nothing); the permutation itself against src/moe/dispatch.ts; and a token range split in
 * two chunks by hand (the chunk path moeExpertsGpu takes for big batches).
 *
 * Tolerance: |gpu − cpu| ≤ 2e-5 · (rms(cpu output) + |cpu|). The GPU accumulates the D = 72-term gate/up dots and
 * the F = 100-term down dots in f32 where the CPU uses float64, evaluates the activations with f32 exp, and adds the
 * k slots in another order. f32 summation of K terms errs by at most ≈ K·2⁻²⁴ ≈ 6e-6 (K = 100) of the sum of the
 * terms' magnitudes, and with random signs typically by ≈ √K·2⁻²⁴ of it; the magnitudes are a few times the output
 * scale, so errors of a few 1e-6 of the output rms are expected (the worst seen is ≈ 1.5e-6, logged at the end).
 * 2e-5 leaves a wide margin while any wrong row, column, expert, gate or activation gives errors of order 1.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GpuContext, type GpuTensor } from '../../../src/backend/webgpu/context.js';
import { moeExpertsGpu, type GpuExpertSet } from '../../../src/backend/webgpu/kernels/moe.js';
import { moePermuteGpu } from '../../../src/backend/webgpu/kernels/moe-permute.js';
import { groupedDownGpu, groupedGateUpGpu, MOE_TILE_M } from '../../../src/backend/webgpu/kernels/grouped-gemm.js';
import { moeCombineGpu } from '../../../src/backend/webgpu/kernels/moe-combine.js';
import { dispatch } from '../../../src/moe/dispatch.js';
import type { Routing } from '../../../src/moe/routers/router.js';
import { seededUniform } from '../../../src/train/model/rng.js';
import { randomF32 as rand } from '../../backend/ref.js';
import {
  cfgOf, checkMoeOutput, cpuMoe, makeLayer, routingOf, type ActKind, type Biases, type Layer, type WDT,
} from '../../helpers/gpu-experts.js';

let ctx: GpuContext;
// Without subgroup matrices: these are the f32-activation kernels (coop-gemm.test.ts covers the tensor-core ones).
before(async () => { ctx = await GpuContext.create({ subgroupMatrix: false }); });
after(() => { ctx.destroy(); });

const D = 72;
const F = 100;

let worst = 0;

function compare(got: Float32Array, ref: Float32Array, what: string): void {
  worst = Math.max(worst, checkMoeOutput(got, ref, D, what));
}

async function runCase(layer: Layer, T: number, k: number, kind: ActKind, routing: Routing, seed: number, what: string): Promise<void> {
  const x = rand(T * D, seededUniform(seed), 1);
  const cfg = cfgOf(kind);
  const ref = cpuMoe(x, routing, layer, cfg);
  const xt = ctx.upload(x, [T, D]);
  const et = ctx.upload(routing.experts, [T, k]);
  const gt = ctx.upload(routing.gates, [T, k]);
  // Both expert-GEMM paths: the tiled GEMM forced, and the default choice (the GEMV path of grouped-gemv.ts for
  // T·k ≤ 64 slots, tested further in grouped-gemv.test.ts).
  for (const path of ['gemm', 'auto'] as const) {
    const out = moeExpertsGpu(ctx, xt, T, et, gt, k, layer.gpu, { kind, alpha: cfg.actOpts?.alpha, limit: cfg.actOpts?.limit }, undefined, { path });
    const got = await ctx.read(out);
    ctx.release(out);
    compare(got, ref, `${what} (${path})`);
  }
  ctx.release(xt, et, gt);
}

test('moeExpertsGpu vs runExperts: E × T × k sweep, acts, biases and dtypes rotated', async () => {
  const dtypes: WDT[] = ['f32', 'f16', 'bf16'];
  const acts: ActKind[] = ['silu', 'gelu', 'gpt_oss'];
  let i = 0;
  for (const E of [1, 4, 16]) {
    for (const dtype of dtypes) {
      const biases: Biases = { gate: i % 2 === 0, up: i % 3 !== 1, down: i % 2 === 1 };
      const layer = makeLayer(ctx, E, D, F, dtype, biases, 10 + i);
      for (const T of [1, 3, 37]) {
        for (const k of [1, 2, 4]) {
          const kind = acts[(i + T + k) % 3]!;
          const routing = routingOf(T, E, k, 1000 + i * 31 + T * 7 + k);
          await runCase(layer, T, k, kind, routing, 77 + T + k, `E=${E} ${dtype} T=${T} k=${k} ${kind} bias=${JSON.stringify(biases)}`);
        }
      }
      layer.free();
      i++;
    }
  }
});

test('moeExpertsGpu: every activation × weight dtype × bias on/off', async () => {
  let seed = 500;
  for (const dtype of ['f32', 'f16', 'bf16'] as const) {
    for (const withBias of [false, true]) {
      const layer = makeLayer(ctx, 4, D, F, dtype, { gate: withBias, up: withBias, down: withBias }, seed++);
      for (const kind of ['silu', 'gelu', 'gpt_oss'] as const) {
        const routing = routingOf(7, 4, 2, seed++);
        await runCase(layer, 7, 2, kind, routing, seed++, `${dtype} bias=${withBias} ${kind}`);
      }
      layer.free();
    }
  }
});

test('moeExpertsGpu: empty experts, all tokens to one expert (several tiles), repeated experts', async () => {
  const layer = makeLayer(ctx, 16, D, F, 'f32', { gate: true, up: false, down: true }, 900);
  // All 37 tokens to expert 5: one expert with 37 rows (two 32-row tiles), 15 experts with none.
  await runCase(layer, 37, 1, 'silu', routingOf(37, 16, 1, 901, () => 5), 902, 'all to expert 5');
  // Only experts 3 and 15 used, k = 2: 74 rows over 2 experts (three tiles), the rest empty.
  await runCase(layer, 37, 2, 'gelu', routingOf(37, 16, 2, 903, (_t, j) => (j === 0 ? 15 : 3)), 904, 'experts 3 and 15 only');
  // Every slot of a token on the same expert (duplicates), and the last expert only.
  await runCase(layer, 3, 4, 'gpt_oss', routingOf(3, 16, 4, 905, (t) => (t === 1 ? 15 : 0)), 906, 'duplicate slots');
  // More than 256 slots: several blocks in the permutation's rank pass (37·4 = 148; 80·4 = 320).
  await runCase(layer, 80, 4, 'silu', routingOf(80, 16, 4, 907), 908, 'T=80 k=4');
  layer.free();
});

test('moeExpertsGpu: expert ids outside [0, E) contribute nothing', async () => {
  const E = 4;
  const T = 9;
  const k = 2;
  const layer = makeLayer(ctx, E, D, F, 'f32', { gate: false, up: true, down: true }, 950);
  const routing = routingOf(T, E, k, 951);
  const bad = Int32Array.from(routing.experts);
  for (const s of [1, 4, 5, 12]) bad[s] = s === 4 ? -1 : E + s; // token 2 loses both slots
  // CPU reference: the same slots with gate 0 on a valid expert.
  const refRouting: Routing = { ...routing, gates: Float32Array.from(routing.gates, (g, s) => (bad[s] !== routing.experts[s] ? 0 : g)) };
  const x = rand(T * D, seededUniform(952), 1);
  const ref = cpuMoe(x, refRouting, layer, { act: 'silu' });
  const xt = ctx.upload(x, [T, D]);
  const et = ctx.upload(bad, [T, k]);
  const gt = ctx.upload(routing.gates, [T, k]);
  const out = ctx.upload(new Float32Array(T * D).fill(123), [T, D]);
  const res = moeExpertsGpu(ctx, xt, T, et, gt, k, layer.gpu, { kind: 'silu' }, out);
  assert.equal(res, out);
  const got = await ctx.read(out);
  ctx.release(xt, et, gt, out);
  compare(got, ref, 'out-of-range ids');
  for (let d = 0; d < D; d++) assert.equal(got[2 * D + d], 0);
  layer.free();
});

test('moePermuteGpu: offsets, stable order and tiles match src/moe/dispatch.ts', async () => {
  for (const [T, E, k, slotBase, seed] of [[37, 16, 4, 0, 1], [300, 7, 2, 0, 2], [40, 5, 3, 33, 3], [2, 256, 1, 0, 4]] as const) {
    const routing = routingOf(T, E, k, 1200 + seed, seed === 2 ? (t, j) => (t * 3 + j * 5) % E : undefined);
    const n = T * k - slotBase;
    const sub: Routing = { ...routing, T: 1, k: n, experts: routing.experts.slice(slotBase), gates: routing.gates.slice(slotBase) };
    const d = dispatch(sub);
    const et = ctx.upload(routing.experts, [T, k]);
    const pm = moePermuteGpu(ctx, et, slotBase, n, E, MOE_TILE_M);
    const perm = new Uint32Array((await ctx.readI32(pm.perm)).buffer);
    ctx.release(et, pm.perm);
    const what = `T=${T} E=${E} k=${k} slotBase=${slotBase}`;
    assert.equal(perm[1], n, `${what}: routed slots`);
    assert.deepEqual(Array.from(perm.subarray(pm.offBase, pm.offBase + E + 1)), Array.from(d.offsets), `${what}: offsets`);
    assert.deepEqual(Array.from(perm.subarray(pm.orderBase, pm.orderBase + n)), Array.from(d.order), `${what}: order`);
    const tiles: number[][] = [];
    for (let e = 0; e < E; e++) {
      for (let r = 0; r < d.counts[e]!; r += MOE_TILE_M) tiles.push([e, d.offsets[e]! + r, d.offsets[e]! + Math.min(r + MOE_TILE_M, d.counts[e]!)]);
    }
    assert.equal(perm[0], tiles.length, `${what}: tile count`);
    assert.ok(tiles.length <= pm.maxTiles, `${what}: tile bound`);
    const got = Array.from({ length: tiles.length }, (_, i) => Array.from(perm.subarray(pm.tilesBase + 3 * i, pm.tilesBase + 3 * i + 3)));
    assert.deepEqual(got, tiles, `${what}: tiles`);
  }
});

test('token chunks by hand (the path moeExpertsGpu takes for big batches) give the same result', async () => {
  const E = 4;
  const T = 37;
  const k = 2;
  const layer = makeLayer(ctx, E, D, F, 'bf16', { gate: true, up: true, down: false }, 970);
  const routing = routingOf(T, E, k, 971);
  const x = rand(T * D, seededUniform(972), 1);
  const ref = cpuMoe(x, routing, layer, { act: 'gelu' });
  const xt = ctx.upload(x, [T, D]);
  const et = ctx.upload(routing.experts, [T, k]);
  const gt = ctx.upload(routing.gates, [T, k]);
  const out: GpuTensor = ctx.tensor([T, D]);
  for (const [t0, Tc] of [[0, 20], [20, 17]] as const) {
    const pm = moePermuteGpu(ctx, et, t0 * k, Tc * k, E, MOE_TILE_M);
    const h = ctx.tensor([Tc * k, F]);
    groupedGateUpGpu(ctx, xt, pm, k, layer.gpu, { kind: 'gelu' }, h);
    const y = ctx.tensor([Tc * k, D]);
    groupedDownGpu(ctx, h, pm, layer.gpu, y);
    moeCombineGpu(ctx, y, et, gt, t0, Tc, D, k, E, out);
    ctx.release(h, y, pm.perm);
  }
  const got = await ctx.read(out);
  ctx.release(xt, et, gt, out);
  compare(got, ref, 'two chunks');
  layer.free();
});

test('argument checks; a weight over the binding limit is refused with a clear error', () => {
  const layer = makeLayer(ctx, 2, D, F, 'f32', { gate: false, up: false, down: false }, 990);
  const xt = ctx.tensor([3, D]);
  const et = ctx.tensor([3, 2], 'i32');
  const gt = ctx.tensor([3, 2]);
  assert.throws(() => moeExpertsGpu(ctx, xt, 3, gt, gt, 2, layer.gpu, { kind: 'silu' }), /experts must be i32/);
  assert.throws(() => moeExpertsGpu(ctx, xt, 3, et, gt, 2, { ...layer.gpu, F: F + 1 }, { kind: 'silu' }), /expected/);
  // A stacked weight claiming more elements than one binding can hold.
  const huge = Math.ceil(ctx.maxBinding / 4 / (D * F)) + 1;
  const fake: GpuExpertSet = {
    ...layer.gpu, E: huge,
    gate: { ...layer.gpu.gate, shape: [huge, F, D] }, up: { ...layer.gpu.up, shape: [huge, F, D] }, down: { ...layer.gpu.down, shape: [huge, D, F] },
  };
  assert.throws(() => moeExpertsGpu(ctx, xt, 3, et, gt, 2, fake, { kind: 'silu' }), /max storage binding/);
  ctx.release(xt, et, gt);
  layer.free();
  // The largest error seen, relative to the output scale, for the record.
  assert.ok(worst < 2e-5, `worst relative error ${worst}`);
  console.log(`moe: worst |gpu − cpu| / (rms + |cpu|) = ${worst.toExponential(2)}`);
});
