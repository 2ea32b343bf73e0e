/**
 * aux-free-sigmoid: biased selection / unbiased gates vs float64, group-limited variant, the bias update steering
 * load toward uniform on a skewed toy, state round trip, gradients.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AuxFreeSigmoidRouter } from '../../../src/moe/routers/aux-free-sigmoid.js';
import { expertLoad } from '../../../src/moe/balance/aux-free-bias.js';
import { argTopK, checkGrads, close, ctx, gateOf, matmulNT, opts, project, randn, rng, sigm, slotSet, xParam } from './helpers.js';

const T = 10, D = 6, E = 8, k = 2;

function reference(x: Float64Array, W: Float64Array, bias: Float64Array, groups?: { n: number; keep: number }, scaling = 1) {
  const logits = matmulNT(x, W, T, D, E);
  const slots: { t: number; e: number; g: number }[] = [];
  for (let t = 0; t < T; t++) {
    const s = Array.from(logits.subarray(t * E, t * E + E), sigm);
    const c = s.map((v, e) => v + bias[e]!);
    let allowed: ((e: number) => boolean) | undefined;
    if (groups) {
      const size = E / groups.n;
      const gs = Array.from({ length: groups.n }, (_, g) => {
        const m = c.slice(g * size, (g + 1) * size).sort((a, b) => b - a);
        return m[0]! + m[1]!;
      });
      const kept = new Set(argTopK(gs, groups.keep));
      allowed = (e) => kept.has(Math.floor(e / size));
    }
    const top = argTopK(c, k, allowed);
    const z = top.reduce((a, e) => a + s[e]!, 0) + 1e-20;
    for (const e of top) slots.push({ t, e, g: (s[e]! / z) * scaling });
  }
  return slots;
}

describe('aux-free-sigmoid', () => {
  it('selects on sigmoid + bias, gates on the unbiased scores (float64 reference)', () => {
    const router = new AuxFreeSigmoidRouter({ kind: 'aux-free-sigmoid', normTopK: true, scaling: 2.5 }, opts({ D, numExperts: E, topK: k }));
    router.bias.set(randn(E, rng(8), 0.3));
    const x = xParam(T, D);
    const r = router.route(x, ctx());
    const ref = reference(x.data as Float64Array, router.weight.data as Float64Array, router.bias, undefined, 2.5);
    assert.deepEqual(slotSet(r), slotSet({ tokens: ref.map((s) => s.t), experts: ref.map((s) => s.e) }));
    for (const s of ref) close(gateOf(r, s.t, s.e), s.g, 1e-12, `gate ${s.t}:${s.e}`);
    // The bias changed the choice for some token (otherwise this test proves nothing about it).
    const unbiased = reference(x.data as Float64Array, router.weight.data as Float64Array, new Float64Array(E));
    assert.notDeepEqual(slotSet(r), slotSet({ tokens: unbiased.map((s) => s.t), experts: unbiased.map((s) => s.e) }));
  });
  it('group-limited variant keeps the topkGroup best groups by top-2 sums', () => {
    const router = new AuxFreeSigmoidRouter({ kind: 'aux-free-sigmoid', normTopK: true, nGroup: 4, topkGroup: 2 }, opts({ D, numExperts: E, topK: k }, 3));
    router.bias.set(randn(E, rng(9), 0.2));
    const x = xParam(T, D, 4);
    const r = router.route(x, ctx());
    const ref = reference(x.data as Float64Array, router.weight.data as Float64Array, router.bias, { n: 4, keep: 2 });
    assert.deepEqual(slotSet(r), slotSet({ tokens: ref.map((s) => s.t), experts: ref.map((s) => s.e) }));
    for (const s of ref) close(gateOf(r, s.t, s.e), s.g, 1e-12, `gate ${s.t}:${s.e}`);
  });
  it('afterStep: bias updates on skewed scores reduce max/mean load toward 1', () => {
    const Tt = 256;
    const router = new AuxFreeSigmoidRouter({ kind: 'aux-free-sigmoid', normTopK: true, biasUpdateRate: 0.003 }, opts({ D, numExperts: E, topK: k }, 5));
    // Skew: the last input feature is 1 and expert e's weight on it is 0.5·e, so high experts win.
    const W = router.weight.data;
    for (let e = 0; e < E; e++) W[e * D + D - 1] = 0.5 * e;
    const x = xParam(Tt, D, 7);
    for (let t = 0; t < Tt; t++) x.data[t * D + D - 1] = 1;
    const ratio = (): number => Math.max(...expertLoad([router.route(x, ctx())], E)) / ((Tt * k) / E);
    const before = ratio();
    for (let step = 0; step < 200; step++) router.afterStep([router.route(x, ctx())]);
    const after = ratio();
    assert.ok(before > 2, `before: max/mean ${before}`);
    assert.ok(after < 1.3, `after 200 steps: max/mean ${after}`);
  });
  it('state round trip under the DeepSeek-V3 tensor name', () => {
    const a = new AuxFreeSigmoidRouter({ kind: 'aux-free-sigmoid', normTopK: true }, opts({ D, numExperts: E, topK: k }));
    a.bias.set(randn(E, rng(1)));
    const s = a.state();
    assert.deepEqual(Object.keys(s), ['model.layers.0.mlp.gate.e_score_correction_bias']);
    const b = new AuxFreeSigmoidRouter({ kind: 'aux-free-sigmoid', normTopK: true }, opts({ D, numExperts: E, topK: k }));
    b.loadState(s);
    assert.deepEqual(Array.from(b.bias), Array.from(a.bias));
  });
  it('gradients (gates + LB on normalised scores + z) w.r.t. W and x match finite differences; the bias gets none', () => {
    const router = new AuxFreeSigmoidRouter({ kind: 'aux-free-sigmoid', normTopK: true, scaling: 1.5, lbCoef: 0.2, zCoef: 0.1 }, opts({ D, numExperts: E, topK: k }, 6));
    router.bias.set(randn(E, rng(2), 0.2));
    const x = xParam(T, D, 8);
    checkGrads(() => project([router.route(x, ctx())]), [x, router.weight]);
    const raw = new AuxFreeSigmoidRouter({ kind: 'aux-free-sigmoid', normTopK: false }, opts({ D, numExperts: E, topK: k }, 6));
    checkGrads(() => project([raw.route(x, ctx())]), [x, raw.weight]);
  });
});
