/**
 * Every Hugging Face reference fixture in ../shared/fixtures/hf, against float64 references computed by transformers.
 * Tolerances (from the fixtures' README, which states they hold for a correct float32 implementation):
 *   logits, hidden states, block outputs: 1e-4 absolute (float32 accumulation over these widths errs ~1e-6);
 *   router top-k: identical expert sets (meta.json's min_router_topk_gap is ≥ 1e-2, far above float32 error);
 *   greedy generation: identical tokens (min_generation_top2_gap likewise);
 *   lm_loss, aux_loss: 1e-4 relative.
 * No fixture is skipped: an architecture that is missing or wrong fails here.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { Fixture, assertSameTopK, fixtureNames, maxAbsDiff } from '../helpers/fixtures.js';
import { loadModel, type LoadedModel } from '../../src/models/load.js';
import type { ForwardResult } from '../../src/models/causal-lm.js';
import { MoeBlock } from '../../src/moe/moe-block.js';
import { generate } from '../../src/infer/generate.js';
import { lmLoss } from '../../src/infer/lm-loss.js';
import { loadBalancingLoss } from '../../src/moe/balance/load-balancing-loss.js';
import { initCpuBackend } from '../../src/backend/cpu/init.js';
import { linearKernelName, setLinearKernel } from '../../src/backend/cpu/linear.js';

const ABS = 1e-4;
const REL = 1e-4;

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  const { max, at } = maxAbsDiff(actual, expected);
  assert.ok(max <= tol, `${what}: max |diff| ${max.toExponential(3)} at ${at} (got ${actual[at]}, want ${expected[at]}) exceeds ${tol}`);
}

// Both CPU kernel paths: the plain-TS fallback and the WASM SIMD kernels (worker pool included).
const KERNELS = [
  { name: 'ts', use: () => setLinearKernel(undefined) },
  { name: 'wasm-simd', use: () => { initCpuBackend(); assert.equal(linearKernelName(), 'wasm-simd'); } },
];

for (const kernel of KERNELS) for (const name of fixtureNames()) {
  describe(`fixture ${name} [${kernel.name}]`, () => {
    let fx: Fixture;
    let m: LoadedModel;
    let fwd: ForwardResult;
    let ids: number[];

    before(() => {
      kernel.use();
      fx = new Fixture(name);
      m = loadModel(fx.dir);
      ids = fx.ints('input_ids');
      fwd = m.model.forward(ids, fx.meta.batch, undefined, true);
    });

    it('logits within 1e-4 of the reference', () => {
      assertClose(fwd.logits, fx.f32('logits'), ABS, 'logits');
    });

    it('every hidden_states.i within 1e-4', () => {
      const L = m.spec.layers.length;
      for (let i = 0; i <= L; i++) assertClose(fwd.capture!.hidden[i]!, fx.f32(`hidden_states.${i}`), ABS, `hidden_states.${i}`);
    });

    it("each layer's MLP/MoE block output from moe_in.l within 1e-4", () => {
      let checked = 0;
      m.model.layers.forEach((layer, l) => {
        if (!fx.has(`moe_in.${l}`)) return;
        const x = fx.f32(`moe_in.${l}`);
        const r = layer.ffn.forward(x, x.length / m.spec.hiddenSize);
        assertClose(r.out, fx.f32(`moe_out.${l}`), ABS, `moe_out.${l}`);
        checked++;
      });
      assert.ok(checked > 0, 'fixture has no moe_in.l');
    });

    it('router picks the same top-k expert sets as the reference', () => {
      let checked = 0;
      m.model.layers.forEach((layer, l) => {
        if (!(layer.ffn instanceof MoeBlock) || !fx.has(`router_in.${l}`)) return;
        const x = fx.f32(`router_in.${l}`);
        const T = x.length / m.spec.hiddenSize;
        const routing = layer.ffn.router.route(layer.ffn.routerLogits(x, T), T);
        assertSameTopK(fx, l, routing.k, routing.experts);
        checked++;
      });
      assert.ok(checked > 0, 'no MoE layer with router references');
    });

    it('greedy generation with the KV cache equals generated_ids', () => {
      const B = fx.meta.batch;
      const S = fx.meta.seq;
      const P = fx.meta.gen_prompt;
      const prompts = Array.from({ length: B }, (_, b) => ids.slice(b * S, b * S + P));
      const out = generate(m.model, prompts, { maxNewTokens: fx.meta.gen_new });
      const ref = fx.ints('generated_ids');
      const W = P + fx.meta.gen_new;
      for (let b = 0; b < B; b++) assert.deepEqual(out[b], ref.slice(b * W, (b + 1) * W), `sequence ${b}`);
    });

    it('lm_loss (and aux_loss where defined) within 1e-4 relative', () => {
      const want = fx.f32('lm_loss')[0]!;
      const got = lmLoss(fwd.logits, ids, fx.meta.batch, fx.meta.seq, m.spec.vocabSize);
      assert.ok(Math.abs(got - want) <= REL * Math.abs(want), `lm_loss ${got} vs ${want}`);
      if (!fx.has('aux_loss')) return;
      const routings = fwd.capture!.routing.filter((r) => r !== undefined);
      const aux = loadBalancingLoss(routings.map((r) => r.logits), routings[0]!.E, routings[0]!.k);
      const wantAux = fx.f32('aux_loss')[0]!;
      assert.ok(Math.abs(aux - wantAux) <= REL * Math.abs(wantAux), `aux_loss ${aux} vs ${wantAux}`);
      const coef = m.spec.routerAuxLossCoef ?? 0;
      const wantTotal = fx.f32('loss_with_aux')[0]!;
      assert.ok(Math.abs(got + coef * aux - wantTotal) <= REL * Math.abs(wantTotal), `loss_with_aux ${got + coef * aux} vs ${wantTotal}`);
    });
  });
}
