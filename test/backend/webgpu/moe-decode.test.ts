/**
 * The one-token MoE kernels (src/backend/webgpu/kernels/moe-decode.ts: gate/up with slots as tiles, down fused with
 * the gated combine) through moeExpertsGpu's 'decode' path — which also runs a batch token by token — against the
 * CPU `runExperts` of src/moe/experts.ts on the same weights, routings and activations.
 *
 * Covered: k ∈ {1, 2, 8, 16} × E ∈ {1, 8, 64, 128} × weight dtype (f32, f16, bf16; f16 / bf16 compared against the
 * CPU on the same rounded values) × activation, biases on and off; F odd (one slot at a time; down rows of f16 /
 * bf16 weights start mid-word on every other row, a leading or trailing single per row), F even (valid slots in
 * pairs; k odd leaves a single; a pair with one invalid slot) and F > 256 (several two-pair steps per lane);
 * D not a multiple of the 4 columns of a workgroup; T = 5 tokens run one at a time (slotBase > 0, rows of out
 * written in place); repeated experts within the token; expert ids outside [0, E) (they contribute nothing, a token
 * with none valid gets a zero row); and the kernels called by hand on a chunk mid-routing.
 *
 * Tolerance: |gpu − cpu| ≤ 2e-5 · (rms(cpu output) + |cpu|), moe.test.ts's bound for the f32 expert path. The
 * down dot products here are summed as 64 lane partials of ≤ F/64 terms each, weighted by their gate and added over
 * the k slots before one 6-level tree: ≈ (k·F/64 + 6)·2⁻²⁴ of the terms' magnitudes (≈ 1e-6 for k = 16, F = 259),
 * far below 2e-5, while a wrong slot, expert, gate, bias, column or activation errs by order 1.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GpuContext } from '../../../src/backend/webgpu/context.js';
import { moeExpertsGpu } from '../../../src/backend/webgpu/kernels/moe.js';
import { moeDecodeDownCombineGpu, moeDecodeGateUpGpu } from '../../../src/backend/webgpu/kernels/moe-decode.js';
import type { Routing } from '../../../src/moe/routers/router.js';
import { seededUniform } from '../../../src/train/model/rng.js';
import { randomF32 as rand } from '../../backend/ref.js';
import { cfgOf, checkMoeOutput, cpuMoe, makeLayer, routingOf, type ActKind, type Biases, type Layer } from '../../helpers/gpu-experts.js';

let ctx: GpuContext;
before(async () => { ctx = await GpuContext.create(); });
after(() => { ctx.destroy(); });

let worst = 0;
let decodeRuns = 0;

/** moeExpertsGpu forced onto the decode path (ids as uploaded: `ids` may differ from routing.experts). */
async function decodeMoe(layer: Layer, x: Float32Array, routing: Routing, ids: Int32Array, kind: ActKind): Promise<Float32Array> {
  const { T, k } = routing;
  const cfg = cfgOf(kind);
  const xt = ctx.upload(x, [T, layer.D]);
  const et = ctx.upload(ids, [T, k]);
  const gt = ctx.upload(routing.gates, [T, k]);
  const before = ctx.dispatches;
  const out = moeExpertsGpu(ctx, xt, T, et, gt, k, layer.gpu, { kind, alpha: cfg.actOpts?.alpha, limit: cfg.actOpts?.limit }, undefined, { path: 'decode' });
  assert.equal(ctx.dispatches - before, 2 * T, 'two dispatches per token');
  decodeRuns++;
  const got = await ctx.read(out);
  ctx.release(xt, et, gt, out);
  return got;
}

async function runCase(layer: Layer, routing: Routing, kind: ActKind, seed: number, what: string): Promise<void> {
  const x = rand(routing.T * layer.D, seededUniform(seed), 1);
  const ref = cpuMoe(x, routing, layer, cfgOf(kind));
  worst = Math.max(worst, checkMoeOutput(await decodeMoe(layer, x, routing, routing.experts, kind), ref, layer.D, what, 2e-5));
}

test('decode path vs runExperts: k × E × dtype sweep, activations and biases rotated (D = 130, F = 67)', async () => {
  const acts: ActKind[] = ['silu', 'gelu', 'gpt_oss'];
  let i = 0;
  for (const E of [1, 8, 64, 128]) {
    for (const dtype of ['f32', 'f16', 'bf16'] as const) {
      const biases: Biases = { gate: i % 2 === 0, up: i % 3 !== 1, down: i % 2 === 1 };
      const layer = makeLayer(ctx, E, 130, 67, dtype, biases, 20 + i);
      for (const k of [1, 2, 8, 16]) {
        const kind = acts[(i + k) % 3]!;
        await runCase(layer, routingOf(1, E, k, 3000 + i * 17 + k), kind, 300 + i + k, `E=${E} ${dtype} k=${k} ${kind} bias=${JSON.stringify(biases)}`);
      }
      layer.free();
      i++;
    }
  }
});

test('decode path: long rows (F = 259 > 2 · 128), odd D, repeated experts, a batch run token by token', async () => {
  let seed = 700;
  for (const dtype of ['f32', 'f16', 'bf16'] as const) {
    const layer = makeLayer(ctx, 6, 65, 259, dtype, { gate: true, up: true, down: true }, seed++);
    await runCase(layer, routingOf(1, 6, 4, seed++), 'silu', seed++, `D=65 F=259 ${dtype}`);
    await runCase(layer, routingOf(1, 6, 8, seed++, (_t, j) => j % 2), 'gelu', seed++, `repeats ${dtype}`);
    await runCase(layer, routingOf(5, 6, 3, seed++), 'gpt_oss', seed++, `T=5 one token at a time ${dtype}`);
    layer.free();
  }
});

test('decode path, even F (valid slots in pairs, two rows per loop): k odd and even, a pair with one invalid slot', async () => {
  let seed = 800;
  for (const dtype of ['f32', 'f16', 'bf16'] as const) {
    for (const F of [2, 130, 300]) {
      const layer = makeLayer(ctx, 8, 66, F, dtype, { gate: F !== 2, up: true, down: true }, seed++);
      for (const k of [3, 8]) await runCase(layer, routingOf(2, 8, k, seed++), 'silu', seed++, `F=${F} ${dtype} k=${k}`);
      // Slots 0,1 form a pair; slot 1 out of range: the pair falls back to one-by-one.
      const routing = routingOf(1, 8, 4, seed++);
      const bad = Int32Array.from(routing.experts);
      bad[1] = -1;
      const refRouting: Routing = { ...routing, gates: Float32Array.from(routing.gates, (g, s) => (s === 1 ? 0 : g)) };
      const x = rand(layer.D, seededUniform(seed++), 1);
      const ref = cpuMoe(x, refRouting, layer, { act: 'gelu' });
      worst = Math.max(worst, checkMoeOutput(await decodeMoe(layer, x, routing, bad, 'gelu'), ref, layer.D, `F=${F} ${dtype} half-invalid pair`, 2e-5));
      layer.free();
    }
  }
});

test('decode path: expert ids outside [0, E) contribute nothing; a token without a valid slot gets zeros', async () => {
  const E = 8;
  const k = 4;
  const layer = makeLayer(ctx, E, 130, 67, 'bf16', { gate: false, up: true, down: true }, 900);
  const routing = routingOf(3, E, k, 901);
  const bad = Int32Array.from(routing.experts);
  bad[1] = -1;
  bad[2] = E;
  for (let j = 0; j < k; j++) bad[2 * k + j] = E + 3; // token 2: none valid
  const refRouting: Routing = { ...routing, gates: Float32Array.from(routing.gates, (g, s) => (bad[s] !== routing.experts[s] ? 0 : g)) };
  const x = rand(3 * layer.D, seededUniform(902), 1);
  const ref = cpuMoe(x, refRouting, layer, { act: 'silu' });
  const got = await decodeMoe(layer, x, routing, bad, 'silu');
  worst = Math.max(worst, checkMoeOutput(got, ref, layer.D, 'out-of-range ids', 2e-5));
  for (let d = 0; d < layer.D; d++) assert.equal(got[2 * layer.D + d], 0);
  layer.free();
});

test('decode kernels by hand: a token mid-routing, and a slotBase that is not a token start is refused', async () => {
  const E = 8;
  const k = 2;
  const T = 4;
  const layer = makeLayer(ctx, E, 130, 67, 'f16', { gate: true, up: false, down: true }, 950);
  const routing = routingOf(T, E, k, 951);
  const x = rand(T * layer.D, seededUniform(952), 1);
  const ref = cpuMoe(x, routing, layer, { act: 'gelu' });
  const xt = ctx.upload(x, [T, layer.D]);
  const et = ctx.upload(routing.experts, [T, k]);
  const gt = ctx.upload(routing.gates, [T, k]);
  const out = ctx.upload(new Float32Array(T * layer.D).fill(7), [T, layer.D]);
  const h = ctx.tensor([k, layer.F]);
  moeDecodeGateUpGpu(ctx, xt, et, 2 * k, k, layer.gpu, { kind: 'gelu' }, h);
  moeDecodeDownCombineGpu(ctx, h, et, gt, 2 * k, k, layer.gpu, out, 2);
  const got = await ctx.read(out);
  worst = Math.max(worst, checkMoeOutput(got.slice(2 * layer.D, 3 * layer.D), ref.slice(2 * layer.D, 3 * layer.D), layer.D, 'token 2 by hand', 2e-5));
  for (const t of [0, 1, 3]) for (let d = 0; d < layer.D; d++) assert.equal(got[t * layer.D + d], 7, 'other rows untouched');
  assert.throws(() => moeDecodeGateUpGpu(ctx, xt, et, 3, k, layer.gpu, { kind: 'gelu' }, h), /not a token's first slot/);
  ctx.release(xt, et, gt, out, h);
  layer.free();
  assert.ok(decodeRuns > 0);
  console.log(`# moe-decode: worst |gpu − cpu| / (rms + |cpu|) = ${worst.toExponential(2)}`);
});
