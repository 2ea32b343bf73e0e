import { Fixture, fixtureNames, maxAbsDiff } from './dist/test/helpers/fixtures.js';
import { loadDeviceModel } from './dist/src/models/load-device.js';
import { WebGpuOps } from './dist/src/backend/webgpu/webgpu-ops.js';
import { CpuOps } from './dist/src/backend/cpu/cpu-ops.js';
const gpu = await WebGpuOps.create({ f16: true, tensorCores: 'always' });
const origRun = gpu.ctx.run.bind(gpu.ctx);
let coop = 0, other = 0;
gpu.ctx.run = (code, ...a) => { if (code.includes('tensor-core GEMM')) coop++; else if (/linear GEMM|linear GEMV|grouped/.test(code.slice(0,400))) other++; return origRun(code, ...a); };
for (const name of fixtureNames()) {
  const fx = new Fixture(name);
  const ids = fx.ints('input_ids');
  coop = 0; other = 0;
  const g = await loadDeviceModel(fx.dir, gpu).model.forward(ids, fx.meta.batch, undefined, { captureExperts: true });
  const c = await loadDeviceModel(fx.dir, new CpuOps({ roundMatricesToF16: true, roundMatmulInputsToF16: true })).model.forward(ids, fx.meta.batch, undefined, { captureExperts: true });
  const { max } = maxAbsDiff(g.logits, c.logits);
  let same = 0, tot = 0;
  g.experts.forEach((e, l) => { if (e) { tot++; if ([...e].join() === [...c.experts[l]].join()) same++; } });
  console.log(name, 'coop', coop, 'other matmul', other, 'max diff', max.toExponential(2), 'expert layers same', same, '/', tot);
}
process.exit(0);
