/**
 * GPU router (src/backend/webgpu/kernels/router.ts) against the CPU inference routers of src/moe/routers/, built as
 * `makeRouter` builds them, on the same f32 logits: random rows, rows full of exact ties (logits quantised to a few
 * levels, so equal scores must break to the lower index in both), DeepSeek-V3 groups (E = 16, nGroup = 4,
 * topkGroup = 2) including negative correction biases (masked experts compare as 0.0, not −∞) and k larger than the
 * kept groups hold, DeepSeek-V2 greedy and group-limited, sparsemixer with and without jitter, E up to 256, k up to 16.
 *
 * Expert ids must match exactly, slot by slot (the order of the k chosen experts matters). Gates: |gpu − cpu| ≤
 * 1e-6·|cpu| (a gate of exactly 0, a masked DeepSeek-V2 expert, must be exactly 0). The CPU computes exponentials
 * and softmax sums in float64 and rounds to f32; the GPU's f32 path (≈1-ulp exp of exactly carried differences,
 * compensated sums, one division per gate, a second for renormalisation) stays within a few ulp, 2⁻²⁴ ≈ 6e-8 each,
 * so 1e-6 leaves more than a factor of 2 of margin.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GpuContext } from '../../../src/backend/webgpu/context.js';
import { uploadF32 } from '../../../src/backend/webgpu/weights.js';
import { routeGpu, gpuRouterSupported, type GpuRouterSpec } from '../../../src/backend/webgpu/kernels/router.js';
import { SoftmaxTopKRouter } from '../../../src/moe/routers/softmax-topk.js';
import { TopKSoftmaxRouter } from '../../../src/moe/routers/topk-softmax.js';
import { SigmoidGroupTopKRouter } from '../../../src/moe/routers/sigmoid-group-topk.js';
import { GroupLimitedGreedyRouter } from '../../../src/moe/routers/group-limited-greedy.js';
import { SparseMixerRouter } from '../../../src/moe/routers/sparsemixer.js';
import type { Router, RouterSpec } from '../../../src/moe/routers/router.js';
import { seededUniform } from '../../../src/train/model/rng.js';

let ctx: GpuContext;
before(async () => { ctx = await GpuContext.create(); });
after(() => { ctx.destroy(); });

/** Random logits in [-scale, scale); with `levels`, quantised to that many values per unit (lots of exact ties). */
function logitsOf(T: number, E: number, seed: number, scale = 3, levels = 0): Float32Array {
  const r = seededUniform(seed);
  const a = new Float32Array(T * E);
  for (let i = 0; i < a.length; i++) {
    const v = (r() * 2 - 1) * scale;
    a[i] = levels ? Math.round(v * levels) / levels : v;
  }
  return a;
}

/** The CPU router for a spec, as src/moe/routers/index.ts makeRouter constructs it. */
function cpuRouter(spec: GpuRouterSpec, E: number, k: number, bias?: Float32Array): Router {
  switch (spec.kind) {
    case 'softmax-topk': return new SoftmaxTopKRouter(E, k, spec.normTopK);
    case 'topk-softmax': return new TopKSoftmaxRouter(E, k);
    case 'sigmoid-group-topk':
      return new SigmoidGroupTopKRouter(E, k, { ...spec, biasName: 'e_score_correction_bias' }, bias ?? new Float32Array(E));
    case 'group-limited-greedy': return new GroupLimitedGreedyRouter(E, k, spec);
    case 'sparsemixer': return new SparseMixerRouter(E, k, spec.jitterEps);
  }
}

let checkedGates = 0;
let worstGate = 0;

async function check(spec: GpuRouterSpec, T: number, E: number, k: number, logits: Float32Array, bias?: Float32Array): Promise<void> {
  const ref = cpuRouter(spec, E, k, bias).route(logits, T);
  const lt = ctx.upload(logits, [T, E]);
  const bw = bias ? uploadF32(ctx, bias, 'bias') : undefined;
  const { experts, gates } = routeGpu(ctx, lt, T, E, k, spec, bw);
  const ge = await ctx.readI32(experts);
  const gg = await ctx.read(gates);
  ctx.release(lt, experts, gates);
  bw?.buffer.destroy();
  const what = `${JSON.stringify(spec)} T=${T} E=${E} k=${k}`;
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < k; j++) {
      const s = t * k + j;
      if (ge[s] !== ref.experts[s]) {
        assert.fail(`${what}: token ${t} slot ${j}: expert ${ge[s]} vs cpu ${ref.experts[s]} (gpu [${ge.slice(t * k, t * k + k)}], cpu [${ref.experts.slice(t * k, t * k + k)}])`);
      }
      const c = ref.gates[s]!;
      const g = gg[s]!;
      if (!(Math.abs(g - c) <= 1e-6 * Math.abs(c))) assert.fail(`${what}: token ${t} slot ${j}: gate ${g} vs cpu ${c} (rel ${Math.abs(g - c) / Math.abs(c)})`);
      if (c !== 0) worstGate = Math.max(worstGate, Math.abs(g - c) / Math.abs(c));
      checkedGates++;
    }
  }
}

test('gpuRouterSupported: the five inference rules, not the zoo routers', () => {
  assert.equal(gpuRouterSupported({ kind: 'softmax-topk', normTopK: true }), true);
  assert.equal(gpuRouterSupported({ kind: 'topk-softmax' }), true);
  assert.equal(gpuRouterSupported({ kind: 'sigmoid-group-topk', nGroup: 8, topkGroup: 4, normTopK: true, scaling: 2.5, biasName: 'b' }), true);
  assert.equal(gpuRouterSupported({ kind: 'group-limited-greedy', nGroup: 8, topkGroup: 3, method: 'greedy', normTopK: false, scaling: 1 }), true);
  assert.equal(gpuRouterSupported({ kind: 'sparsemixer', jitterEps: 0.01 }), true);
  const zoo: RouterSpec = { kind: 'expert-choice' };
  assert.equal(gpuRouterSupported(zoo), false);
  assert.equal(gpuRouterSupported({ kind: 'balanced-softmax-topk', normTopK: true }), false);
});

test('softmax-topk: random and tied logits, renormalised or not, E up to 256, k up to 16', async () => {
  let seed = 1;
  for (const normTopK of [true, false]) {
    const spec: GpuRouterSpec = { kind: 'softmax-topk', normTopK };
    for (const [T, E, k] of [[1, 8, 2], [37, 8, 1], [37, 60, 4], [5, 64, 8], [70, 128, 6], [33, 256, 16], [3, 16, 16]] as const) {
      await check(spec, T, E, k, logitsOf(T, E, seed++));
      await check(spec, T, E, k, logitsOf(T, E, seed++, 2, 2)); // ~9 distinct values per row: many ties
    }
    // A wide logit range (tiny probabilities, still normal f32) and a row of all-equal logits.
    await check(spec, 9, 32, 4, logitsOf(9, 32, seed++, 30));
    await check(spec, 2, 24, 5, new Float32Array(48).fill(0.5));
  }
});

test('topk-softmax: random and tied logits', async () => {
  let seed = 100;
  const spec: GpuRouterSpec = { kind: 'topk-softmax' };
  for (const [T, E, k] of [[1, 4, 1], [37, 32, 4], [13, 256, 16], [40, 24, 2], [6, 7, 7]] as const) {
    await check(spec, T, E, k, logitsOf(T, E, seed++));
    await check(spec, T, E, k, logitsOf(T, E, seed++, 2, 1));
  }
  await check(spec, 1, 10, 3, new Float32Array(10).fill(-1));
});

test('sigmoid-group-topk (DeepSeek-V3): groups, correction bias, 0.0 masking, ties', async () => {
  let seed = 200;
  const biasOf = (E: number, s: number, scale: number): Float32Array => {
    const r = seededUniform(s);
    return Float32Array.from({ length: E }, () => (r() * 2 - 1) * scale);
  };
  for (const normTopK of [true, false]) {
    const v3: GpuRouterSpec = { kind: 'sigmoid-group-topk', nGroup: 4, topkGroup: 2, normTopK, scaling: 2.5 };
    // E = 16 in 4 groups, keep 2.
    await check(v3, 37, 16, 4, logitsOf(37, 16, seed++), biasOf(16, seed++, 0.1));
    await check(v3, 37, 16, 4, logitsOf(37, 16, seed++, 3, 1), biasOf(16, seed++, 0)); // ties, zero bias
    // Strongly negative biases: kept experts' choices are < 0, so masked experts (0.0) win the later slots; and
    // k = 6 > the 4 experts of the one kept group.
    await check({ ...v3, topkGroup: 1 }, 20, 16, 6, logitsOf(20, 16, seed++), biasOf(16, seed++, 0).fill(-2));
    await check(v3, 20, 16, 6, logitsOf(20, 16, seed++), biasOf(16, seed++, 1.5));
    // No bias given (zeros), the real DeepSeek-V3 shape (256 experts, 8 groups, keep 4, top-8), one group of one.
    await check(v3, 11, 16, 4, logitsOf(11, 16, seed++));
    await check({ ...v3, nGroup: 8, topkGroup: 4 }, 37, 256, 8, logitsOf(37, 256, seed++), biasOf(256, seed++, 0.05));
    await check({ ...v3, nGroup: 12, topkGroup: 5, scaling: 1 }, 5, 12, 3, logitsOf(5, 12, seed++), biasOf(12, seed++, 0.2));
    await check({ ...v3, nGroup: 1, topkGroup: 1 }, 3, 1, 1, logitsOf(3, 1, seed++), biasOf(1, seed++, 0.2));
    // Saturated sigmoids (all 1.0 in f32): a pure tie-break test.
    await check({ ...v3, nGroup: 2, topkGroup: 2 }, 4, 8, 3, logitsOf(4, 8, seed++, 3, 0).map((v) => 40 + v));
  }
});

test('group-limited-greedy (DeepSeek-V2): greedy and group-limited, masked gates exactly 0', async () => {
  let seed = 300;
  for (const normTopK of [false, true]) {
    const greedy: GpuRouterSpec = { kind: 'group-limited-greedy', nGroup: 1, topkGroup: 1, method: 'greedy', normTopK, scaling: 16 };
    await check(greedy, 37, 64, 6, logitsOf(37, 64, seed++));
    await check(greedy, 10, 20, 3, logitsOf(10, 20, seed++, 2, 2));
    const limited: GpuRouterSpec = { kind: 'group-limited-greedy', nGroup: 4, topkGroup: 2, method: 'group_limited_greedy', normTopK, scaling: 1.5 };
    await check(limited, 37, 16, 4, logitsOf(37, 16, seed++));
    await check(limited, 37, 16, 4, logitsOf(37, 16, seed++, 2, 1));
    // k = 10 > the 8 kept experts: the last two slots take masked experts with gate 0.
    await check(limited, 6, 16, 10, logitsOf(6, 16, seed++));
    await check({ ...limited, nGroup: 8, topkGroup: 3 }, 20, 160, 6, logitsOf(20, 160, seed++));
  }
});

test('sparsemixer: jitter masks, zero jitter, ties', async () => {
  let seed = 400;
  for (const jitterEps of [0.01, 0.3, 0]) {
    const spec: GpuRouterSpec = { kind: 'sparsemixer', jitterEps };
    await check(spec, 37, 16, 2, logitsOf(37, 16, seed++));
    await check(spec, 37, 16, 2, logitsOf(37, 16, seed++, 1, 4));
    await check(spec, 8, 2, 2, logitsOf(8, 2, seed++));
    await check(spec, 5, 256, 2, logitsOf(5, 256, seed++, 0.05));
  }
  // Zeros (0/0 in the CPU's mask compares false: kept) and a row of equal logits.
  await check({ kind: 'sparsemixer', jitterEps: 0.01 }, 2, 6, 2, Float32Array.from([0, 0, -1, 0, 0.5, 0, 0, 0, 0, 0, 0, 0]));
});

test('a large T uses several workgroups and stays per-token correct', async () => {
  await check({ kind: 'softmax-topk', normTopK: true }, 1000, 8, 2, logitsOf(1000, 8, 500));
});

test('argument checks', () => {
  const lt = ctx.tensor([2, 8]);
  assert.throws(() => routeGpu(ctx, lt, 2, 8, 3, { kind: 'sparsemixer', jitterEps: 0.01 }), /top-2/);
  assert.throws(() => routeGpu(ctx, lt, 2, 8, 17, { kind: 'topk-softmax' }), /k = 17/);
  assert.throws(() => routeGpu(ctx, lt, 2, 300, 2, { kind: 'topk-softmax' }), /E = 300/);
  assert.throws(() => routeGpu(ctx, lt, 2, 8, 2, { kind: 'sigmoid-group-topk', nGroup: 3, topkGroup: 1, normTopK: true, scaling: 1 }), /groups/);
  assert.throws(() => routeGpu(ctx, lt, 4, 8, 2, { kind: 'topk-softmax' }), /fewer/);
  ctx.release(lt);
  assert.ok(checkedGates > 1000);
  console.log(`router: ${checkedGates} gates, worst relative error ${worstGate.toExponential(2)}`);
});
