/**
 * Loading a model onto the GPU must not park its host copies in the CPU backend's WASM heap (which never shrinks
 * and is capped at 4 GiB): with the WASM backend installed, a WebGPU load leaves the heap exactly as it was, while a
 * CPU load of the same checkpoint grows it by at least the model's weight bytes (the control that shows the
 * measurement can see weights arriving).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { initCpuBackend } from '../../../src/backend/cpu/init.js';
import { shutdownWasmBackend, wasmBackendInfo } from '../../../src/backend/cpu/wasm/index.js';
import { WebGpuOps } from '../../../src/backend/webgpu/webgpu-ops.js';
import { loadDeviceModel } from '../../../src/models/load-device.js';
import { loadModel } from '../../../src/models/load.js';
import { Fixture } from '../../helpers/fixtures.js';

let ops: WebGpuOps | undefined;
after(async () => { ops?.ctx.destroy(); await shutdownWasmBackend(); });

test('a WebGPU load leaves the WASM weight heap untouched; a CPU load fills it', async () => {
  initCpuBackend({ threads: 1 });
  const used = (): number => wasmBackendInfo()!.heap.liveBytes;
  const fx = new Fixture('mixtral');
  ops = await WebGpuOps.create();
  const before = used();
  loadDeviceModel(fx.dir, ops);
  assert.equal(used(), before, 'WebGPU load allocated weights in the WASM heap');
  loadModel(fx.dir);
  // Mixtral fixture: 370.0K f32 parameters = 1.48 MB.
  assert.ok(used() - before >= 370_000 * 4 * 0.99, `CPU load grew the heap by only ${used() - before} bytes`);
});
