/** null-experts (AdaMoE): top-k over real + null ids, real gates renormalised among real picks; fewer real experts. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NullExpertsRouter } from '../../../src/moe/routers/null-experts.js';
import { switchLoadBalancingLoss } from '../../../src/moe/balance/switch-loss.js';
import { softmax } from '../../../src/train/autograd/ops/softmax.js';
import { constant } from '../../../src/train/autograd/var.js';
import { argTopK, checkGrads, close, ctx, gateOf, matmulNT, opts, project, slotSet, softmaxRow, xParam } from './helpers.js';

const T = 12, D = 6, E = 6, m = 3, k = 3;

describe('null-experts', () => {
  it('declares numNull zero experts after the FFN experts; router weight [E + numNull, D]', () => {
    const router = new NullExpertsRouter({ kind: 'null-experts', numNull: m, normTopK: true }, opts({ D, numExperts: E, topK: k }));
    assert.deepEqual(router.extraExperts, ['zero', 'zero', 'zero']);
    assert.deepEqual(router.weight.shape, [E + m, D]);
    assert.equal(router.weight.name, 'model.layers.0.mlp.gate.weight');
  });
  it('routes top-k over all ids; real gates renormalised among the real picks, null gates raw (float64 reference)', () => {
    const router = new NullExpertsRouter({ kind: 'null-experts', numNull: m, normTopK: true, lbCoef: 0.01 }, opts({ D, numExperts: E, topK: k }));
    const x = xParam(T, D, 3, 2);
    const r = router.route(x, ctx());
    const logits = matmulNT(x.data, router.weight.data, T, D, E + m);
    const ref: { t: number; e: number; g: number }[] = [];
    let sawNull = false;
    for (let t = 0; t < T; t++) {
      const p = softmaxRow(logits.subarray(t * (E + m), (t + 1) * (E + m)));
      const top = argTopK(p, k);
      const z = top.filter((e) => e < E).reduce((a, e) => a + p[e]!, 0);
      for (const e of top) { ref.push({ t, e, g: e < E ? p[e]! / z : p[e]! }); if (e >= E) sawNull = true; }
    }
    assert.ok(sawNull, 'some token picked a null expert');
    assert.deepEqual(slotSet(r), slotSet({ tokens: ref.map((s) => s.t), experts: ref.map((s) => s.e) }));
    for (const s of ref) close(gateOf(r, s.t, s.e), s.g, 1e-12, `gate ${s.t}:${s.e}`);
    const lb = switchLoadBalancingLoss(softmax(constant(logits, [T, E + m])), Int32Array.from(ref.map((s) => s.e))).data[0]!;
    close(r.aux.find((a) => a.name === 'load_balancing')!.loss.data[0]!, 0.01 * lb, 1e-12, 'lb over all ids');
  });
  it('null experts reduce real-expert usage: favouring them (larger null logits) lowers real experts per token below k', () => {
    const router = new NullExpertsRouter({ kind: 'null-experts', numNull: m, normTopK: true }, opts({ D, numExperts: E, topK: k }));
    const x = xParam(64, D, 5);
    for (let t = 0; t < 64; t++) x.data[t * D + D - 1] = 1;
    const realPerToken = (): number => Array.from(router.route(x, ctx()).experts).filter((e) => e < E).length / 64;
    const W = router.weight.data;
    const used: number[] = [];
    for (const push of [-3, 0, 0.6, 3]) {
      for (let j = 0; j < m; j++) W[(E + j) * D + D - 1] = push;
      used.push(realPerToken());
    }
    assert.equal(used[0], k, 'strongly disfavoured null experts: always k real experts');
    for (let i = 1; i < used.length; i++) assert.ok(used[i]! <= used[i - 1]!, `monotone: ${used.join(', ')}`);
    assert.ok(used[2]! < k && used[2]! > k - m, `intermediate: ${used[2]}`);
    assert.equal(used[3], k - m, 'strongly favoured: only k − numNull real experts');
  });
  it('gradients (gates + LB + z) w.r.t. W and x match finite differences', () => {
    const router = new NullExpertsRouter({ kind: 'null-experts', numNull: m, normTopK: true, lbCoef: 0.2, zCoef: 0.1 }, opts({ D, numExperts: E, topK: k }, 2));
    const x = xParam(T, D, 4, 2);
    checkGrads(() => project([router.route(x, ctx())]), [x, router.weight]);
  });
});
