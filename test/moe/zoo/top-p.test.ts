/** top-p (dynamic routing): activation counts on hand-made probabilities, float64 reference, entropy loss, gradients. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { constant } from '../../../src/train/autograd/var.js';
import { TopPRouter, routingEntropy } from '../../../src/moe/routers/top-p.js';
import { checkGrads, close, ctx, gateOf, matmulNT, opts, project, slotSet, softmaxRow, xParam } from './helpers.js';

describe('top-p', () => {
  // With W = I (D = E) the logits are x, so x = log p makes the router's probabilities exactly p.
  const E = 4;
  // (cumulative sums kept away from the thresholds: softmax(log p) reproduces p only to ~1e-16)
  const probs = [[0.55, 0.25, 0.15, 0.05], [0.05, 0.15, 0.25, 0.55], [0.92, 0.04, 0.02, 0.02], [0.26, 0.25, 0.25, 0.24]];
  const make = (threshold: number, maxK?: number): TopPRouter => {
    const r = new TopPRouter({ kind: 'top-p', threshold, maxK }, opts({ D: E, numExperts: E, topK: 2 }));
    r.weight.data.fill(0);
    for (let e = 0; e < E; e++) r.weight.data[e * E + e] = 1;
    return r;
  };
  const x = constant(Float64Array.from(probs.flat(), Math.log), [4, E]);
  const counts = (r: TopPRouter, mk = false): number[] => {
    const res = r.route(x, ctx(mk));
    return [0, 1, 2, 3].map((t) => Array.from(res.tokens).filter((v) => v === t).length);
  };
  it('activates experts by descending probability until the cumulative reaches p (the crossing expert included)', () => {
    assert.deepEqual(counts(make(0.5)), [1, 1, 1, 2]); // 0.55; 0.55; 0.92; 0.26 + 0.25 (the crossing expert counts)
    assert.deepEqual(counts(make(0.6)), [2, 2, 1, 3]); // 0.8; 0.8; 0.9; 0.76
    assert.deepEqual(counts(make(0.9)), [3, 3, 1, 4]); // 0.95; 0.95; 0.92; needs all four
    assert.deepEqual(counts(make(0.9, 2)), [2, 2, 1, 2]); // capped at maxK
    const r = make(0.6).route(x, ctx());
    assert.deepEqual(slotSet(r), slotSet({ tokens: [0, 0, 1, 1, 2, 3, 3, 3], experts: [0, 1, 3, 2, 0, 0, 1, 2] }));
    close(gateOf(r, 3, 2), 0.25, 1e-12, 'gates are the probabilities, not renormalised');
  });
  it('matches a float64 re-implementation on random inputs; entropy loss = mean routing entropy', () => {
    const T = 20, D = 6, Er = 8;
    const router = new TopPRouter({ kind: 'top-p', threshold: 0.7, entropyCoef: 0.01, lbCoef: 0.01 }, opts({ D, numExperts: Er, topK: 2 }));
    const xr = xParam(T, D, 3, 2);
    const r = router.route(xr, ctx());
    const logits = matmulNT(xr.data, router.weight.data, T, D, Er);
    const ref: { t: number; e: number; g: number }[] = [];
    let H = 0;
    for (let t = 0; t < T; t++) {
      const p = softmaxRow(logits.subarray(t * Er, t * Er + Er));
      H -= p.reduce((a, v) => a + v * Math.log(v), 0) / T;
      const order = p.map((_, i) => i).sort((a, b) => p[b]! - p[a]! || a - b);
      let cum = 0;
      for (const e of order) { ref.push({ t, e, g: p[e]! }); cum += p[e]!; if (cum >= 0.7) break; }
    }
    assert.deepEqual(slotSet(r), slotSet({ tokens: ref.map((s) => s.t), experts: ref.map((s) => s.e) }));
    for (const s of ref) close(gateOf(r, s.t, s.e), s.g, 1e-12, `gate ${s.t}:${s.e}`);
    close(r.aux.find((a) => a.name === 'dynamic_entropy')!.loss.data[0]!, 0.01 * H, 1e-12, 'entropy');
    close(routingEntropy(constant(Float64Array.of(0, 0, 0, 0), [1, 4])).data[0]!, Math.log(4), 1e-12, 'uniform entropy');
    assert.ok(new Set(ref.map((s) => s.t)).size === T && ref.length > T, 'variable experts per token');
  });
  it('gradients (gates + LB + entropy + z, with capacity) w.r.t. W and x match finite differences', () => {
    const router = new TopPRouter({ kind: 'top-p', threshold: 0.6, entropyCoef: 0.3, lbCoef: 0.2, zCoef: 0.1, capacityFactor: 1.5 }, opts({ D: 6, numExperts: 8, topK: 2 }, 4));
    const xr = xParam(12, 6, 5, 2);
    checkGrads(() => project([router.route(xr, ctx())]), [xr, router.weight]);
  });
});
