/**
 * The trainable model against the inference engine, and its gradients against finite differences.
 *
 * 1. Forward: on every Hugging Face fixture whose architecture has trainable routers, TrainableLM (float32, loaded
 *    from the fixture's checkpoint) gives the inference CausalLM's logits within 1e-5 absolute (both float32 over the
 *    same weights: they differ only by summation order, ~1e-6 at these widths) and the same experts per token.
 *    Routers with no trainable implementation are listed in NO_TRAINABLE_ROUTER; for those the test asserts that
 *    building the trainable model fails with a clear "no trainable router" error (nothing is skipped).
 * 2. Gradients: on tiny random float64 models of every supported architecture (GQA with q/k norms, biases, sinks,
 *    sliding window; MLA with and without q LoRA; softmax-topk, topk-softmax, sigmoid-group-topk with a correction
 *    bias, group-limited-greedy routers; per-expert, fused and GPT-OSS layouts; shared experts, gated or not; Granite
 *    multipliers; and switchyard_moe with the zoo's MoE++ and null-expert routers, for the MoE block's zero / copy /
 *    constant experts), the analytic gradient of loss = lm + aux of *every* parameter is checked against central
 *    differences at its largest-gradient elements and a few random ones, with the tolerance and step of the
 *    autograd checker (test/train/autograd/gradcheck.ts): |analytic − numeric| ≤ 1e-6 · max(1, |numeric|),
 *    h = 1e-6 · max(1, |x|). The routing must not change under the ±h probes (else the loss is not differentiable
 *    there and the check says so).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Fixture, fixtureNames, maxAbsDiff } from '../helpers/fixtures.js';
import { loadModel } from '../../src/models/load.js';
import { Checkpoint } from '../../src/io/checkpoint.js';
import { TrainableLM } from '../../src/train/model/trainable-lm.js';
import { TrainableSigmoidGroupTopKRouter } from '../../src/moe/routers/sigmoid-group-topk.js';
import { backward, noGrad } from '../../src/train/autograd/var.js';
import type { SlotRouting } from '../../src/moe/routers/trainable.js';
import { GRADCHECK_TOL, rng } from './autograd/gradcheck.js';
import { TINY_CONFIGS } from './tiny-configs.js';

const FORWARD_ABS = 1e-5;
/** Fixtures whose routing rule exists for inference only (Phi-MoE's sparsemixer trains with Gumbel sampling). */
const NO_TRAINABLE_ROUTER = new Set(['phimoe']);

describe('TrainableLM forward = inference CausalLM on the HF fixtures', () => {
  for (const name of fixtureNames()) {
    it(name, (t) => {
      const fx = new Fixture(name);
      const ids = fx.ints('input_ids');
      const B = fx.meta.batch;
      const S = fx.meta.seq;
      const ref = loadModel(fx.dir);
      const ck = new Checkpoint(fx.dir);
      let lm: TrainableLM;
      try {
        if (NO_TRAINABLE_ROUTER.has(name)) {
          assert.throws(() => TrainableLM.fromCheckpoint(ref.spec, ck), /no trainable router/);
          return;
        }
        lm = TrainableLM.fromCheckpoint(ref.spec, ck);
      } finally {
        ck.close();
      }
      const want = ref.model.forward(ids, B, undefined, true);
      const got = noGrad(() => lm.forward(ids, B, S, { training: false }));
      const { max, at } = maxAbsDiff(got.logits.data, want.logits);
      assert.ok(max <= FORWARD_ABS, `logits: max |diff| ${max} at ${at}`);
      const inferRoutings = want.capture!.routing.filter((r) => r !== undefined);
      assert.equal(got.routings.length, inferRoutings.length, 'MoE layers');
      got.routings.forEach((r, i) => {
        assert.deepEqual([...r.experts], [...inferRoutings[i]!.experts], `experts of MoE layer ${lm.moeLayers[i]}`);
      });
      t.diagnostic(`${name}: max |logit diff| ${max.toExponential(2)}`);
    });
  }
});

const routingSignature = (rs: readonly SlotRouting[]): string => rs.map((r) => `${r.experts.join(',')}|${r.tokens.join(',')}`).join(';');

/** Central-difference check of every parameter's gradient (a few elements each). */
function checkGradients(lm: TrainableLM, ids: number[], B: number, S: number, seed: number): { maxErr: number; checked: number } {
  lm.zeroGrad();
  const out = lm.loss(ids, B, S);
  backward(out.loss);
  const sig = routingSignature(out.routings);
  const r = rng(seed);
  const lossAt = (): number => noGrad(() => {
    const o = lm.loss(ids, B, S);
    assert.equal(routingSignature(o.routings), sig, 'routing changed under a finite-difference probe');
    return o.loss.data[0]!;
  });
  let maxErr = 0;
  let checked = 0;
  for (const [name, p] of lm.namedParams()) {
    const g = p.grad;
    const n = p.size;
    // The two largest |gradient| elements and two random ones.
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => Math.abs(g?.[b] ?? 0) - Math.abs(g?.[a] ?? 0));
    const pick = new Set([order[0]!, order[Math.min(1, n - 1)]!, Math.floor(r() * n), Math.floor(r() * n)]);
    for (const e of pick) {
      const x0 = p.data[e]!;
      const h = 1e-6 * Math.max(1, Math.abs(x0));
      const xp = x0 + h;
      const xm = x0 - h;
      p.data[e] = xp;
      const fp = lossAt();
      p.data[e] = xm;
      const fm = lossAt();
      p.data[e] = x0;
      const numeric = (fp - fm) / (xp - xm);
      const analytic = g ? g[e]! : 0;
      const err = Math.abs(analytic - numeric) / Math.max(1, Math.abs(numeric));
      assert.ok(err <= GRADCHECK_TOL, `${name}[${e}]: analytic ${analytic} vs numeric ${numeric} (err ${err.toExponential(2)})`);
      maxErr = Math.max(maxErr, err);
      checked++;
    }
  }
  return { maxErr, checked };
}

describe('TrainableLM gradients = finite differences (float64, tiny random models)', () => {
  const cases: [string, 'per-expert' | 'fused'][] = [
    ...Object.keys(TINY_CONFIGS).map((n): [string, 'per-expert'] => [n, 'per-expert']),
    ['mixtral', 'fused'], ['qwen3_moe', 'fused'],
  ];
  for (const [arch, layout] of cases) {
    it(`${arch} (${layout})`, (t) => {
      const lm = TrainableLM.fromConfig(TINY_CONFIGS[arch]!, { precision: 'f64', seed: 7, init: { scheme: 'fan-in' }, layout });
      const r = rng(99);
      // Non-trivial values everywhere: norms ≠ 1, biases/sinks ≠ 0, correction biases set.
      for (const p of lm.params()) {
        if (/norm|layernorm/.test(p.name)) for (let i = 0; i < p.size; i++) p.data[i] = 1 + 0.2 * (r() - 0.5);
        else if (p.shape.length === 1) for (let i = 0; i < p.size; i++) p.data[i] = 0.2 * (r() - 0.5);
      }
      for (const router of lm.routers()) {
        if (router instanceof TrainableSigmoidGroupTopKRouter) {
          router.loadState({ [router.spec.biasName]: Array.from({ length: router.numExperts }, () => 0.2 * (r() - 0.5)) });
        }
      }
      const B = 2;
      const S = 6;
      const ids = Array.from({ length: B * S }, () => Math.floor(r() * 32));
      const { maxErr, checked } = checkGradients(lm, ids, B, S, 5);
      t.diagnostic(`${arch} (${layout}): ${lm.params().length} parameters, ${checked} elements, max error ${maxErr.toExponential(2)}`);
    });
  }
});
