/**
 * Every HF fixture on WebGPU (Mesa lavapipe in CI, the H100 on the device machine), f32 weights as stored:
 * logits within 1e-3 of the float64 reference (the bar: GPU reductions are ordered differently from the CPU
 * ones — tree reductions, online softmax — so errors reach ~1e-5 at these widths; 1e-3 leaves margin without hiding
 * a wrong op, which errs by ≥ 1e-2), identical top-k expert sets, identical greedy tokens.
 */
import { deviceFixtureSuite } from '../../helpers/device-fixture-suite.js';
import { WebGpuOps } from '../../../src/backend/webgpu/webgpu-ops.js';

let ops: WebGpuOps | undefined;
deviceFixtureSuite({
  label: 'webgpu',
  logitTol: 1e-3,
  ops: async () => (ops = await WebGpuOps.create()),
  done: () => ops?.ctx.destroy(),
  fixtures: process.env['SWITCHYARD_GPU_FIXTURES']?.split(','),
});
