/**
 * Gradients of the trainable model against transformers (grads.safetensors of the HF fixtures; see
 * ../shared/fixtures/gen_fixtures.py): the model in float64, train mode, loss = `loss_with_aux` (lm_loss +
 * router_aux_loss_coef · load-balancing loss; lm_loss alone for deepseek_v3, whose transformers model adds no aux loss)
 * on io.safetensors' input_ids with labels = input_ids; every parameter's gradient saved under its checkpoint name,
 * plus `__loss__`.
 *
 * Here: the checkpoint loaded as float32 parameters, the same loss, backward, and every parameter compared.
 * Tolerance, per tensor: max |g − g_ref| ≤ 1e-4 · max(max |g_ref|, 1e-12). Why relative to the tensor's scale: the
 * gradient of each tensor is a sum over the 24 tokens of products through the whole network, and float32 rounding
 * (unit roundoff 6e-8) compounds over ~10²–10³ accumulations per entry and a few dozen ops deep, so a correct float32
 * implementation lands ~1e-6 of the tensor's largest gradient (measured: see the diagnostics), while a wrong formula,
 * missing term or misplaced gradient is off by O(1) of it. Absolute tolerances would not fit every tensor: gradient
 * scales range from ~1e-6 (deep router weights) to ~1e-1 (lm_head). The fixtures' routing margins (meta.json
 * min_router_topk_gap ≥ 1.4e-3) keep the top-k choices identical to the reference, so the comparison is exact math.
 * Parameters with no gradient in transformers (experts no token chose) must have none (or zeros) here too.
 * The loss must match `__loss__` within 1e-4 relative.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Fixture, FIXTURES } from '../helpers/fixtures.js';
import { Checkpoint, readConfig } from '../../src/io/checkpoint.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { FileSource } from '../../src/io/file-source.js';
import { specFor } from '../../src/models/registry.js';
import { TrainableLM } from '../../src/train/model/trainable-lm.js';
import { backward } from '../../src/train/autograd/var.js';
import { initCpuBackend } from '../../src/backend/cpu/init.js';
import { linearKernelName, setLinearKernel } from '../../src/backend/cpu/linear.js';

const REL = 1e-4;
const TINY = 1e-12;
const GRAD_FIXTURES = ['mixtral', 'qwen3_moe', 'olmoe', 'deepseek_v3'];

function f32Tensor(f: SafetensorsFile, name: string): Float32Array {
  const info = f.info(name);
  assert.equal(info.dtype, 'F32', `${name} dtype`);
  const b = f.bytes(name);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

// Both float32 linear kernels the autograd's linear runs on: the plain-TS loop and the WASM SIMD one.
const KERNELS = [
  { name: 'ts', use: () => setLinearKernel(undefined) },
  { name: 'wasm-simd', use: () => { initCpuBackend(); assert.equal(linearKernelName(), 'wasm-simd'); } },
];

for (const kernel of KERNELS) for (const name of GRAD_FIXTURES) {
  describe(`gradients vs transformers: ${name} [${kernel.name}]`, () => {
    it('loss and every parameter gradient match grads.safetensors', (t) => {
      kernel.use();
      const fx = new Fixture(name);
      const ck = new Checkpoint(fx.dir);
      let lm: TrainableLM;
      try {
        lm = TrainableLM.fromCheckpoint(specFor(readConfig(fx.dir), new Set(ck.names())), ck, { precision: 'f32' });
      } finally {
        ck.close();
      }
      const ids = fx.ints('input_ids');
      const out = lm.loss(ids, fx.meta.batch, fx.meta.seq);
      backward(out.loss);

      const grads = new SafetensorsFile(new FileSource(join(FIXTURES, name, 'grads.safetensors')));
      const wantLoss = f32Tensor(grads, '__loss__')[0]!;
      const gotLoss = out.loss.data[0]!;
      assert.ok(Math.abs(gotLoss - wantLoss) <= REL * Math.abs(wantLoss), `loss ${gotLoss} vs __loss__ ${wantLoss}`);

      const params = lm.namedParams();
      const state = new Set(Object.keys(lm.state()));
      let worst = 0;
      let worstName = '';
      let compared = 0;
      for (const tensor of grads.tensors.keys()) {
        if (tensor === '__loss__') continue;
        if (state.has(tensor)) continue; // a buffer (e_score_correction_bias): saved as its value, not a gradient
        const p = params.get(tensor);
        assert.ok(p, `grads.safetensors has ${tensor}, which is not a parameter of the trainable model`);
        const ref = f32Tensor(grads, tensor);
        assert.equal(p.size, ref.length, `${tensor} size`);
        const g = p.grad;
        let refMax = 0;
        for (let i = 0; i < ref.length; i++) refMax = Math.max(refMax, Math.abs(ref[i]!));
        let err = 0;
        let at = -1;
        for (let i = 0; i < ref.length; i++) {
          const d = Math.abs((g ? g[i]! : 0) - ref[i]!);
          if (!(d <= err)) { err = d; at = i; }
        }
        if (refMax === 0) {
          assert.equal(err, 0, `${tensor}: transformers gives no gradient, but ours has max |g| ${err}`);
        } else {
          const rel = err / Math.max(refMax, TINY);
          assert.ok(rel <= REL, `${tensor}: max |g − g_ref| = ${err.toExponential(3)} at ${at} (got ${g ? g[at] : 0}, want ${ref[at]}) is ${rel.toExponential(3)} of max |g_ref| ${refMax.toExponential(3)}`);
          if (rel > worst) { worst = rel; worstName = tensor; }
        }
        compared++;
      }
      assert.equal(compared, params.size, `compared ${compared} of ${params.size} parameters (some parameter has no reference gradient)`);
      t.diagnostic(`${name} [${kernel.name}]: ${compared} tensors; loss ${gotLoss} vs ${wantLoss}; worst max|g − g_ref| / max|g_ref| = ${worst.toExponential(3)} (${worstName})`);
      grads.close();
    });
  });
}
