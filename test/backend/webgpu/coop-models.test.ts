/**
 * Every HF fixture on WebGPU's tensor-core path: `--f16` weights with tensorCores 'always', so every f16 matmul of
 * the graph (attention and MLA projections, dense and shared-expert FFNs, both grouped expert GEMMs, the LM head)
 * runs on the subgroup-matrix kernels of coop-gemm.ts — checked by watching the dispatches: no f16 matmul may take
 * another kernel. The reference is the same graph on the CPU ops with the same f16 matrices and every such matmul's
 * input rounded through f16 (CpuOps roundMatmulInputsToF16); router matmuls keep f32 weights and inputs on both.
 *
 * Tolerance: logits within 1e-2 (measured ≤ 2.3e-3 on lavapipe, on logits of size ~4) and identical top-k experts.
 * The kernels themselves agree with float64 to f32 summation error (coop-gemm.test.ts), but rounding to f16 is
 * discontinuous: where the two sides' f32 inputs differ by their summation error (~1e-7 relative), about one value
 * in 500 sits close enough to an f16 rounding boundary to round to neighbouring f16 values on the two sides (2⁻¹¹
 * relative apart). Each matmul of each layer adds such perturbations, so the logits differ by ~1e-3 instead of the
 * ~1e-6 of the f32 path; a wrong fragment, tile, bias or epilogue gives errors of the order of the logits.
 *
 * bf16 checkpoints take the tensor cores without --f16 (weights staged as f16, activations split into f16 hi + lo:
 * f32-path accuracy), so the bf16 fixtures are also run that way with every bf16 matmul forced onto them
 * (tensorCores 'always') and held to the f32 path's own bar: logits within 1e-3 of the float64 reference (measured
 * ~1e-6), the reference top-k experts, the reference greedy tokens.
 *
 * Needs f16 → f32 subgroup matrices (see coop-gemm.test.ts for how CI gets them): skipped otherwise.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { Fixture, assertSameTopK, fixtureNames, maxAbsDiff } from '../../helpers/fixtures.js';
import { generateAsync } from '../../../src/infer/generate.js';
import { loadDeviceModel } from '../../../src/models/load-device.js';
import { WebGpuOps } from '../../../src/backend/webgpu/webgpu-ops.js';
import { CpuOps } from '../../../src/backend/cpu/cpu-ops.js';

const gpu = await WebGpuOps.create({ f16: true, tensorCores: 'always' });
const skip = gpu.ctx.subgroupMatrix ? false : 'the WebGPU adapter has no f16 → f32 subgroup matrices (run under Mesa 26: see scripts/run-tests.mjs)';
if (!gpu.ctx.subgroupMatrix && process.env['SWITCHYARD_REQUIRE_SUBGROUP_MATRIX']) throw new Error(`no subgroup matrices on ${gpu.ctx.adapterName}`);
after(() => gpu.ctx.destroy());

/**
 * Counts, from now on, the tensor-core dispatches of `ops` and the other matmul kernels reading a 16-bit (f16 or
 * bf16) weight — bound as u32 words: matmuls that missed the tensor-core path.
 */
function kernelCounts(ops: WebGpuOps): { coop: number; halfElsewhere: number } {
  const c = { coop: 0, halfElsewhere: 0 };
  const run = ops.ctx.run.bind(ops.ctx);
  ops.ctx.run = (code, ...rest): void => {
    if (code.includes('tensor-core GEMM')) c.coop++;
    else if (/var<storage, read> (w|wg|wu|wd): array<u32>/.test(code)) c.halfElsewhere++;
    run(code, ...rest);
  };
  return c;
}
const counts = kernelCounts(gpu);

describe('every fixture on tensor cores = the CPU graph on the same f16 values', () => {
  for (const name of fixtureNames()) {
    it(name, { skip }, async () => {
      const fx = new Fixture(name);
      const ids = fx.ints('input_ids');
      counts.coop = 0;
      counts.halfElsewhere = 0;
      const g = await loadDeviceModel(fx.dir, gpu).model.forward(ids, fx.meta.batch, undefined, { captureExperts: true });
      assert.ok(counts.coop > 0, 'no tensor-core dispatch');
      assert.equal(counts.halfElsewhere, 0, 'an f16 matmul took a kernel other than the tensor-core one');
      const cpu = new CpuOps({ roundMatricesToF16: true, roundMatmulInputsToF16: true });
      const c = await loadDeviceModel(fx.dir, cpu).model.forward(ids, fx.meta.batch, undefined, { captureExperts: true });
      const { max, at } = maxAbsDiff(g.logits, c.logits);
      assert.ok(max <= 1e-2, `logits differ by ${max.toExponential(3)} at ${at}`);
      console.log(`# ${name}: ${counts.coop} tensor-core dispatches, max |logit diff| ${max.toExponential(2)}`);
      g.experts!.forEach((e, l) => {
        if (e) assert.deepEqual([...e], [...c.experts![l]!], `layer ${l} experts`);
      });
    });
  }
});

describe('bf16 checkpoints on tensor cores (split activations) = the float64 reference within the f32 path\'s 1e-3', () => {
  let bf: WebGpuOps | undefined;
  after(() => bf?.ctx.destroy());
  for (const name of fixtureNames().filter((n) => n.endsWith('-bf16'))) {
    it(name, { skip }, async () => {
      bf = await WebGpuOps.create({ tensorCores: 'always' });
      const c = kernelCounts(bf);
      const fx = new Fixture(name);
      const ids = fx.ints('input_ids');
      const m = loadDeviceModel(fx.dir, bf);
      const g = await m.model.forward(ids, fx.meta.batch, undefined, { captureExperts: true });
      assert.ok(c.coop > 0, 'no tensor-core dispatch');
      assert.equal(c.halfElsewhere, 0, 'a bf16 matmul took a kernel other than the tensor-core one');
      const { max, at } = maxAbsDiff(g.logits, fx.f32('logits'));
      assert.ok(max <= 1e-3, `logits differ from the reference by ${max.toExponential(3)} at ${at}`);
      console.log(`# ${name} (bf16 on tensor cores): ${c.coop} tensor-core dispatches, max |logit − reference| ${max.toExponential(2)}`);
      m.spec.layers.forEach((ls, l) => {
        if (ls.ffn.kind === 'moe' && fx.has(`router_in.${l}`)) assertSameTopK(fx, l, ls.ffn.topK, g.experts![l]!);
      });
      const B = fx.meta.batch;
      const S = fx.meta.seq;
      const P = fx.meta.gen_prompt;
      const out = await generateAsync(m.model, Array.from({ length: B }, (_, b) => ids.slice(b * S, b * S + P)), { maxNewTokens: fx.meta.gen_new });
      const W = P + fx.meta.gen_new;
      const ref = fx.ints('generated_ids');
      for (let b = 0; b < B; b++) assert.deepEqual(out[b], ref.slice(b * W, (b + 1) * W), `sequence ${b}`);
    });
  }
});
