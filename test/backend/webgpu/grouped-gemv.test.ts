/**
 * The decode (small T·k) path of the GPU MoE experts: grouped-gemv.ts through moeExpertsGpu (and by hand), against
 * the CPU `runExperts` of src/moe/experts.ts (plain-TS linear: float64 dot products rounded once) on the same
 * weights, routings and activations, and against the tiled-GEMM path on the same inputs.
 *
 * Covered: T ∈ {1, 2, 5} × k ∈ {1, 2, 8} × E ∈ {1, 8, 64} × weight dtype (f32, f16, bf16; f16 / bf16 compared
 * against the CPU on the same rounded values), activations and bias sets rotated over that sweep, plus every
 * activation × dtype × bias on/off; D = 130, F = 67 (neither a multiple of the 4 output columns of a workgroup nor
 * of 64 / 128 lanes; F odd, so the down rows of f16 / bf16 weights start mid-word on every other row and each row
 * has a leading or trailing single) and D = 65, F = 130 (the same for gate/up); D = 301, F = 259 (rows of more than
 * 256 elements: full two-pair steps, then a leftover pair past lane 64); tiny D = F = 1 and D = 3, F = 2
 * (fewer elements than lanes); experts holding more than 8 slots (E = 1: up to 40 rows = 5 tiles of one expert);
 * repeated experts within a token; expert ids outside [0, E) (contribute nothing); the GEMV kernels by hand on a
 * chunk that starts mid-routing (slotBase > 0); and the threshold forced both ways on the same inputs (the two paths
 * agree; 'auto' is bit-identical to the GEMV path at ≤ 64 slots and to the GEMM path above).
 *
 * Tolerance: |gpu − cpu| ≤ 2e-5 · (rms(cpu output) + |cpu|), as in moe.test.ts. The GPU accumulates the gate/up dots
 * (≤ 301 terms) and the down dots (≤ 259 terms) in f32 where the CPU uses float64, evaluates the activations with
 * f32 exp, and adds the k slots in another order. The GEMV path sums each dot as 64 lane partials of ≤ K/64 terms,
 * then two 8-term levels, so its worst-case f32 error is ≈ (K/64 + 16)·2⁻²⁴ ≈ 1.2e-6 of the sum of the terms'
 * magnitudes (K = 301), typically far less; the magnitudes are a few times the output scale, so errors of about
 * 1e-6 of the output rms are expected (the worst seen is logged at the end). 2e-5 leaves a wide margin while any
 * wrong row, column, expert, gate, bias or activation gives errors of order 1. GEMV vs GEMM (whose K-serial f32
 * sums err by up to ≈ K·2⁻²⁴ ≈ 4e-6 at K = 130): 4e-5, the two tolerances added.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GpuContext, type GpuTensor } from '../../../src/backend/webgpu/context.js';
import { moeExpertsGpu, type MoeExpertsOptions } from '../../../src/backend/webgpu/kernels/moe.js';
import { moePermuteGpu } from '../../../src/backend/webgpu/kernels/moe-permute.js';
import { groupedDownGemvGpu, groupedGateUpGemvGpu, MOE_GEMV_MAX_SLOTS, MOE_GEMV_TILE_M } from '../../../src/backend/webgpu/kernels/grouped-gemv.js';
import { MOE_TILE_M } from '../../../src/backend/webgpu/kernels/grouped-gemm.js';
import { moeCombineGpu } from '../../../src/backend/webgpu/kernels/moe-combine.js';
import type { Routing } from '../../../src/moe/routers/router.js';
import { seededUniform } from '../../../src/train/model/rng.js';
import { randomF32 as rand } from '../../backend/ref.js';
import {
  cfgOf, checkMoeOutput, cpuMoe, makeLayer, routingOf, type ActKind, type Biases, type Layer,
} from '../../helpers/gpu-experts.js';

let ctx: GpuContext;
before(async () => { ctx = await GpuContext.create(); });
after(() => { ctx.destroy(); });

const ALL: Biases = { gate: true, up: true, down: true };
const NONE: Biases = { gate: false, up: false, down: false };

let worst = 0;

function compare(got: Float32Array, ref: Float32Array, D: number, what: string, rel = 2e-5, track = true): void {
  const w = checkMoeOutput(got, ref, D, what, rel);
  if (track) worst = Math.max(worst, w);
}

/** moeExpertsGpu on the given routing (ids as uploaded: `ids` may differ from routing.experts). */
async function gpuMoe(layer: Layer, x: Float32Array, routing: Routing, ids: Int32Array, kind: ActKind, opts: MoeExpertsOptions): Promise<Float32Array> {
  const { T, k } = routing;
  const cfg = cfgOf(kind);
  const xt = ctx.upload(x, [T, layer.D]);
  const et = ctx.upload(ids, [T, k]);
  const gt = ctx.upload(routing.gates, [T, k]);
  const out = moeExpertsGpu(ctx, xt, T, et, gt, k, layer.gpu, { kind, alpha: cfg.actOpts?.alpha, limit: cfg.actOpts?.limit }, undefined, opts);
  const got = await ctx.read(out);
  ctx.release(xt, et, gt, out);
  return got;
}

async function runCase(layer: Layer, routing: Routing, kind: ActKind, seed: number, what: string, opts: MoeExpertsOptions = { path: 'gemv' }): Promise<void> {
  const x = rand(routing.T * layer.D, seededUniform(seed), 1);
  const ref = cpuMoe(x, routing, layer, cfgOf(kind));
  compare(await gpuMoe(layer, x, routing, routing.experts, kind, opts), ref, layer.D, what);
}

test('GEMV path vs runExperts: T × k × E sweep, every dtype, acts and biases rotated (D = 130, F = 67)', async () => {
  const acts: ActKind[] = ['silu', 'gelu', 'gpt_oss'];
  let i = 0;
  for (const E of [1, 8, 64]) {
    for (const dtype of ['f32', 'f16', 'bf16'] as const) {
      const biases: Biases = { gate: i % 2 === 0, up: i % 3 !== 1, down: i % 2 === 1 };
      const layer = makeLayer(ctx, E, 130, 67, dtype, biases, 10 + i);
      for (const T of [1, 2, 5]) {
        for (const k of [1, 2, 8]) {
          const kind = acts[(i + T + k) % 3]!;
          const routing = routingOf(T, E, k, 1000 + i * 31 + T * 7 + k);
          // Forced: 'auto' would take moe-decode.ts for T = 1 (the threshold test below checks auto's choice).
          await runCase(layer, routing, kind, 77 + T + k, `E=${E} ${dtype} T=${T} k=${k} ${kind} bias=${JSON.stringify(biases)}`);
        }
      }
      layer.free();
      i++;
    }
  }
});

test('GEMV path: every activation × weight dtype × bias on/off; odd D (gate/up rows start mid-word)', async () => {
  let seed = 500;
  for (const dtype of ['f32', 'f16', 'bf16'] as const) {
    for (const withBias of [false, true]) {
      const layer = makeLayer(ctx, 8, 65, 130, dtype, withBias ? ALL : NONE, seed++);
      for (const kind of ['silu', 'gelu', 'gpt_oss'] as const) {
        await runCase(layer, routingOf(3, 8, 2, seed++), kind, seed++, `D=65 F=130 ${dtype} bias=${withBias} ${kind}`);
      }
      layer.free();
    }
  }
});

test('GEMV path: rows longer than 2 · 128 elements (several strided steps and a leftover pair per lane)', async () => {
  let seed = 550;
  for (const dtype of ['f32', 'f16', 'bf16'] as const) {
    const layer = makeLayer(ctx, 4, 301, 259, dtype, ALL, seed++);
    await runCase(layer, routingOf(2, 4, 3, seed++), 'silu', seed++, `D=301 F=259 ${dtype}`);
    layer.free();
  }
});

test('GEMV path: tiny sizes (fewer elements than lanes), many rows on one expert, repeated experts', async () => {
  for (const dtype of ['f32', 'f16', 'bf16'] as const) {
    for (const [D, F] of [[1, 1], [3, 2]] as const) {
      const layer = makeLayer(ctx, 3, D, F, dtype, ALL, 600 + D);
      await runCase(layer, routingOf(5, 3, 2, 601), 'silu', 602, `D=${D} F=${F} ${dtype}`);
      layer.free();
    }
  }
  const layer = makeLayer(ctx, 8, 130, 67, 'bf16', { gate: true, up: false, down: true }, 610);
  // All 40 slots on expert 5: 5 tiles of 8 rows of one expert, the other experts empty.
  await runCase(layer, routingOf(5, 8, 8, 611, () => 5), 'gelu', 612, 'all to expert 5');
  // 9 slots on expert 7 (a tile of 8 and one of 1), the rest spread; the last expert is hit.
  await runCase(layer, routingOf(3, 8, 4, 613, (t, j) => (t * 4 + j < 9 ? 7 : j)), 'silu', 614, '9 rows on expert 7');
  // Every slot of a token on the same expert (duplicates within a token).
  await runCase(layer, routingOf(2, 8, 8, 615, (t) => (t === 0 ? 0 : 3)), 'gpt_oss', 616, 'duplicate slots');
  await runCase(layer, routingOf(1, 8, 8, 617, (_t, j) => j % 3), 'silu', 618, 'repeats in one token');
  layer.free();
});

test('GEMV path: expert ids outside [0, E) contribute nothing', async () => {
  const E = 8;
  const T = 5;
  const k = 2;
  const layer = makeLayer(ctx, E, 130, 67, 'f16', { gate: false, up: true, down: true }, 950);
  const routing = routingOf(T, E, k, 951);
  const bad = Int32Array.from(routing.experts);
  for (const s of [1, 4, 5, 8]) bad[s] = s === 4 ? -1 : E + s; // token 2 loses both slots
  // CPU reference: the same slots with gate 0 on a valid expert.
  const refRouting: Routing = { ...routing, gates: Float32Array.from(routing.gates, (g, s) => (bad[s] !== routing.experts[s] ? 0 : g)) };
  const x = rand(T * layer.D, seededUniform(952), 1);
  const ref = cpuMoe(x, refRouting, layer, { act: 'silu' });
  const got = await gpuMoe(layer, x, routing, bad, 'silu', { path: 'gemv' });
  compare(got, ref, layer.D, 'out-of-range ids');
  for (let d = 0; d < layer.D; d++) assert.equal(got[2 * layer.D + d], 0);
  layer.free();
});

test('GEMV kernels by hand: a chunk starting mid-routing (slotBase > 0), tiles of fewer than 8 rows', async () => {
  const E = 8;
  const T = 9;
  const k = 2;
  const layer = makeLayer(ctx, E, 130, 67, 'f32', ALL, 970);
  const routing = routingOf(T, E, k, 971, (t, j) => (t + 3 * j) % 5);
  const x = rand(T * layer.D, seededUniform(972), 1);
  const ref = cpuMoe(x, routing, layer, { act: 'gelu' });
  const xt = ctx.upload(x, [T, layer.D]);
  const et = ctx.upload(routing.experts, [T, k]);
  const gt = ctx.upload(routing.gates, [T, k]);
  const out: GpuTensor = ctx.tensor([T, layer.D]);
  // Two chunks; the second uses 3-row tiles (any bm ≤ 8 is accepted).
  for (const [t0, Tc, bm] of [[0, 4, MOE_GEMV_TILE_M], [4, 5, 3]] as const) {
    const pm = moePermuteGpu(ctx, et, t0 * k, Tc * k, E, bm);
    const h = ctx.tensor([Tc * k, layer.F]);
    groupedGateUpGemvGpu(ctx, xt, pm, k, layer.gpu, { kind: 'gelu' }, h);
    const y = ctx.tensor([Tc * k, layer.D]);
    groupedDownGemvGpu(ctx, h, pm, layer.gpu, y);
    moeCombineGpu(ctx, y, et, gt, t0, Tc, layer.D, k, E, out);
    ctx.release(h, y, pm.perm);
  }
  const got = await ctx.read(out);
  compare(got, ref, layer.D, 'two chunks by hand');
  // A permutation with 32-row tiles is refused.
  const pm = moePermuteGpu(ctx, et, 0, T * k, E, MOE_TILE_M);
  const h = ctx.tensor([T * k, layer.F]);
  assert.throws(() => groupedGateUpGemvGpu(ctx, xt, pm, k, layer.gpu, { kind: 'gelu' }, h), /at most 8/);
  assert.throws(() => groupedDownGemvGpu(ctx, h, pm, layer.gpu, out), /at most 8/);
  ctx.release(xt, et, gt, out, h, pm.perm);
  layer.free();
});

test('threshold forced both ways on the same inputs: the paths agree, and auto picks GEMV at ≤ 64 slots (decode for one token)', async () => {
  assert.equal(MOE_GEMV_MAX_SLOTS, 64);
  const E = 8;
  const layer = makeLayer(ctx, E, 130, 67, 'bf16', ALL, 1100);
  // n = T·k slots: 2, 64 (the threshold: auto = GEMV), 66 (auto = GEMM).
  for (const [T, k, kind] of [[1, 2, 'silu'], [8, 8, 'gelu'], [33, 2, 'gpt_oss']] as const) {
    const routing = routingOf(T, E, k, 1101 + T);
    const x = rand(T * layer.D, seededUniform(1102 + T), 1);
    const ref = cpuMoe(x, routing, layer, cfgOf(kind));
    const gemv = await gpuMoe(layer, x, routing, routing.experts, kind, { path: 'gemv' });
    const gemm = await gpuMoe(layer, x, routing, routing.experts, kind, { path: 'gemm' });
    const auto = await gpuMoe(layer, x, routing, routing.experts, kind, {});
    const decode = await gpuMoe(layer, x, routing, routing.experts, kind, { path: 'decode' });
    const what = `T=${T} k=${k} ${kind}`;
    compare(decode, ref, layer.D, `${what} decode`);
    compare(gemv, ref, layer.D, `${what} gemv`);
    compare(gemm, ref, layer.D, `${what} gemm`);
    compare(gemv, gemm, layer.D, `${what} gemv vs gemm`, 4e-5, false);
    // Both paths are deterministic: auto must match the chosen one bit for bit.
    assert.deepEqual(auto, T === 1 ? decode : T * k <= MOE_GEMV_MAX_SLOTS ? gemv : gemm, `${what}: auto took the wrong path`);
  }
  layer.free();
  assert.ok(worst < 2e-5, `worst relative error ${worst}`);
  console.log(`grouped-gemv: worst |gpu − cpu| / (rms + |cpu|) = ${worst.toExponential(2)}`);
});
