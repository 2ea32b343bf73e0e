/** group-limited-topk: softmax/max (DeepSeek-V2) and sigmoid/top-2-sum (V3) group rules vs float64, gradients. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GroupLimitedTopKRouter } from '../../../src/moe/routers/group-limited-topk.js';
import { argTopK, checkGrads, close, ctx, gateOf, matmulNT, opts, project, sigm, slotSet, softmaxRow, xParam } from './helpers.js';

const T = 12, D = 6, E = 12, k = 3, nGroup = 4, topkGroup = 2;

function reference(x: Float64Array, W: Float64Array, score: 'softmax' | 'sigmoid', groupScore: 'max' | 'top2-sum', normTopK: boolean) {
  const logits = matmulNT(x, W, T, D, E);
  const slots: { t: number; e: number; g: number }[] = [];
  const size = E / nGroup;
  for (let t = 0; t < T; t++) {
    const row = Array.from(logits.subarray(t * E, t * E + E));
    const s = score === 'softmax' ? softmaxRow(row) : row.map(sigm);
    const gs = Array.from({ length: nGroup }, (_, g) => {
      const m = s.slice(g * size, (g + 1) * size).sort((a, b) => b - a);
      return groupScore === 'max' ? m[0]! : m[0]! + m[1]!;
    });
    const kept = new Set(argTopK(gs, topkGroup));
    const top = argTopK(s, k, (e) => kept.has(Math.floor(e / size)));
    const z = top.reduce((a, e) => a + s[e]!, 0) + (score === 'sigmoid' ? 1e-20 : 0);
    for (const e of top) slots.push({ t, e, g: normTopK ? s[e]! / z : s[e]! });
  }
  return slots;
}

describe('group-limited-topk', () => {
  for (const [score, groupScore, normTopK] of [['softmax', 'max', false], ['sigmoid', 'top2-sum', true], ['softmax', 'top2-sum', true]] as const) {
    it(`${score} scores, group score ${groupScore}: only experts of the ${topkGroup} best groups (float64 reference)`, () => {
      const router = new GroupLimitedTopKRouter({ kind: 'group-limited-topk', score, nGroup, topkGroup, groupScore, normTopK }, opts({ D, numExperts: E, topK: k }));
      const x = xParam(T, D, 3, 2);
      const r = router.route(x, ctx());
      const ref = reference(x.data as Float64Array, router.weight.data as Float64Array, score, groupScore, normTopK);
      assert.deepEqual(slotSet(r), slotSet({ tokens: ref.map((s) => s.t), experts: ref.map((s) => s.e) }));
      for (const s of ref) close(gateOf(r, s.t, s.e), s.g, 1e-12, `gate ${s.t}:${s.e}`);
      for (let t = 0; t < T; t++) {
        const groups = new Set(Array.from(r.experts).filter((_, i) => r.tokens[i] === t).map((e) => Math.floor(e / (E / nGroup))));
        assert.ok(groups.size <= topkGroup);
      }
    });
  }
  it('default group score follows the score function (max for softmax, top2-sum for sigmoid)', () => {
    const x = xParam(T, D, 3, 2);
    for (const score of ['softmax', 'sigmoid'] as const) {
      const a = new GroupLimitedTopKRouter({ kind: 'group-limited-topk', score, nGroup, topkGroup, normTopK: true }, opts({ D, numExperts: E, topK: k }));
      const ref = reference(x.data as Float64Array, a.weight.data as Float64Array, score, score === 'softmax' ? 'max' : 'top2-sum', true);
      assert.deepEqual(slotSet(a.route(x, ctx())), slotSet({ tokens: ref.map((s) => s.t), experts: ref.map((s) => s.e) }));
    }
  });
  it('rejects top-k larger than the kept groups hold, and bad group counts', () => {
    assert.throws(() => new GroupLimitedTopKRouter({ kind: 'group-limited-topk', score: 'softmax', nGroup: 4, topkGroup: 1, normTopK: true }, opts({ D, numExperts: E, topK: 4 })), /top-k/);
    assert.throws(() => new GroupLimitedTopKRouter({ kind: 'group-limited-topk', score: 'softmax', nGroup: 5, topkGroup: 1, normTopK: true }, opts({ D, numExperts: E, topK: 1 })), /groups/);
  });
  it('gradients (gates + LB + z) w.r.t. W and x match finite differences', () => {
    for (const score of ['softmax', 'sigmoid'] as const) {
      const router = new GroupLimitedTopKRouter({ kind: 'group-limited-topk', score, nGroup, topkGroup, normTopK: true, scaling: 1.7, lbCoef: 0.2, zCoef: 0.1 }, opts({ D, numExperts: E, topK: k }, 2));
      const x = xParam(T, D, 5);
      checkGrads(() => project([router.route(x, ctx())]), [x, router.weight]);
    }
  });
});
