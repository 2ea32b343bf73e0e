/**
 * The f16 weight path (`--f16`: f32 matrices stored as IEEE f16 on the GPU, accumulation in f32) on every HF fixture,
 * against the device graph on the CPU ops with the same matrices rounded through f16 at load (router weights stay
 * f32 in both). With identical weights the only differences are summation orders, as on the f32 path (measured
 * ≤ 3e-6 there), so logits must agree within 1e-4 and the chosen experts must be identical. (Against the f32
 * reference the f16 rounding itself moves logits by up to ~2e-2 on these fixtures — that is storage precision, not a
 * kernel error, and is why this test compares like with like.)
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Fixture, fixtureNames, maxAbsDiff } from '../../helpers/fixtures.js';
import { loadDeviceModel } from '../../../src/models/load-device.js';
import { WebGpuOps } from '../../../src/backend/webgpu/webgpu-ops.js';
import { CpuOps } from '../../../src/backend/cpu/cpu-ops.js';

let gpu: WebGpuOps;
// Tensor cores off: this is the f16-storage path with f32 activations (coop-models.test.ts covers tensor cores).
before(async () => { gpu = await WebGpuOps.create({ f16: true, tensorCores: 'off' }); });
after(() => gpu.ctx.destroy());

describe('f16 weights on WebGPU = f16-rounded weights on the CPU', () => {
  for (const name of fixtureNames()) {
    it(name, async () => {
      const fx = new Fixture(name);
      const ids = fx.ints('input_ids');
      const g = await loadDeviceModel(fx.dir, gpu).model.forward(ids, fx.meta.batch, undefined, { captureExperts: true });
      const c = await loadDeviceModel(fx.dir, new CpuOps({ roundMatricesToF16: true })).model.forward(ids, fx.meta.batch, undefined, { captureExperts: true });
      const { max, at } = maxAbsDiff(g.logits, c.logits);
      assert.ok(max <= 1e-4, `logits differ by ${max.toExponential(3)} at ${at}`);
      g.experts!.forEach((e, l) => {
        if (e) assert.deepEqual([...e], [...c.experts![l]!], `layer ${l} experts`);
      });
    });
  }
});
