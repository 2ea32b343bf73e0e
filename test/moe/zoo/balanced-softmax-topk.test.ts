/** balanced-softmax-topk: routing vs a float64 re-implementation, aux loss values, capacity dropping, gradients. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BalancedSoftmaxTopKRouter } from '../../../src/moe/routers/balanced-softmax-topk.js';
import { applyCapacity, expertCapacity } from '../../../src/moe/balance/capacity.js';
import { argTopK, checkGrads, close, ctx, gateOf, matmulNT, opts, project, slotSet, softmaxRow, xParam } from './helpers.js';

const T = 9, D = 6, E = 8, k = 2;

function reference(x: Float64Array, W: Float64Array, normTopK: boolean) {
  const logits = matmulNT(x, W, T, D, E);
  const slots: { t: number; e: number; g: number }[] = [];
  let lse2 = 0;
  const P = new Float64Array(E);
  const f = new Float64Array(E);
  for (let t = 0; t < T; t++) {
    const row = Array.from(logits.subarray(t * E, t * E + E));
    const p = softmaxRow(row);
    const m = Math.max(...row);
    lse2 += (m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0))) ** 2;
    p.forEach((v, e) => (P[e]! += v / T));
    const top = argTopK(p, k);
    const z = top.reduce((a, e) => a + p[e]!, 0);
    for (const e of top) { slots.push({ t, e, g: normTopK ? p[e]! / z : p[e]! }); f[e]! += 1 / (T * k); }
  }
  let lb = 0;
  for (let e = 0; e < E; e++) lb += E * f[e]! * P[e]!;
  return { slots, lb, z: lse2 / T };
}

describe('balanced-softmax-topk', () => {
  for (const normTopK of [true, false]) {
    it(`routes like softmax → top-${k}${normTopK ? ' → renormalise' : ''} (float64 reference), with LB and z-loss values`, () => {
      const router = new BalancedSoftmaxTopKRouter({ kind: 'balanced-softmax-topk', normTopK, lbCoef: 0.01, zCoef: 0.001 }, opts({ D, numExperts: E, topK: k }));
      const x = xParam(T, D);
      const r = router.route(x, ctx());
      const ref = reference(x.data as Float64Array, router.weight.data as Float64Array, normTopK);
      assert.deepEqual(slotSet(r), slotSet({ tokens: ref.slots.map((s) => s.t), experts: ref.slots.map((s) => s.e) }));
      for (const s of ref.slots) close(gateOf(r, s.t, s.e), s.g, 1e-12, `gate ${s.t}:${s.e}`);
      const aux = Object.fromEntries(r.aux.map((a) => [a.name, a.loss.data[0]!]));
      close(aux['load_balancing']!, 0.01 * ref.lb, 1e-12, 'lb');
      close(aux['z_loss']!, 0.001 * ref.z, 1e-12, 'z');
      assert.equal(r.logits.shape.join(), `${T},${E}`);
    });
  }
  it('computes no aux losses when not training', () => {
    const router = new BalancedSoftmaxTopKRouter({ kind: 'balanced-softmax-topk', normTopK: true, lbCoef: 0.01, zCoef: 0.001 }, opts({ D, numExperts: E, topK: k }));
    assert.equal(router.route(xParam(T, D), ctx(false)).aux.length, 0);
  });
  it('capacity: drops exactly the slots the priority rule says (training only), never exceeds C', () => {
    const Tc = 40;
    for (const capacityPriority of ['position', 'score'] as const) {
      const router = new BalancedSoftmaxTopKRouter({ kind: 'balanced-softmax-topk', normTopK: true, capacityFactor: 1, capacityPriority }, opts({ D, numExperts: E, topK: k }, 3));
      const x = xParam(Tc, D, 5, 2);
      const full = router.route(x, ctx(false));
      const dropped = router.route(x, ctx(true));
      const C = expertCapacity(Tc, k, E, 1);
      const ranks = Int32Array.from(full.tokens, (_, i) => i % k);
      const kept = applyCapacity({ tokens: full.tokens, experts: full.experts, ranks, scores: full.gates.data }, E, C, capacityPriority);
      assert.ok(kept.length < full.tokens.length, 'this input overflows some expert');
      assert.deepEqual(Array.from(dropped.tokens), Array.from(kept, (i) => full.tokens[i]!));
      assert.deepEqual(Array.from(dropped.experts), Array.from(kept, (i) => full.experts[i]!));
      assert.deepEqual(Array.from(dropped.gates.data), Array.from(kept, (i) => full.gates.data[i]!));
      const load = new Array<number>(E).fill(0);
      for (const e of dropped.experts) load[e]!++;
      assert.ok(Math.max(...load) <= C);
    }
  });
  for (const normTopK of [true, false]) {
    it(`gradients of gates + LB + z + orthogonality w.r.t. W and x match finite differences (normTopK ${normTopK}, with capacity)`, () => {
      const router = new BalancedSoftmaxTopKRouter({
        kind: 'balanced-softmax-topk', normTopK, lbCoef: 0.3, zCoef: 0.2, orthoCoef: 0.1, capacityFactor: 1.25,
      }, opts({ D, numExperts: E, topK: k }, 4));
      const x = xParam(T, D, 6);
      const res = checkGrads(() => project([router.route(x, ctx())]), [x, router.weight]);
      assert.equal(res.checked, T * D + E * D);
    });
  }
});
