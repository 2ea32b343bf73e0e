/** expert-choice: every expert takes exactly C tokens (its top-C by softmax score), gates = S; gradients. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ExpertChoiceRouter, expertChoiceCapacity } from '../../../src/moe/routers/expert-choice.js';
import { argTopK, checkGrads, close, ctx, gateOf, matmulNT, opts, project, slotSet, softmaxRow, xParam } from './helpers.js';

const D = 6, E = 8, k = 2;

describe('expert-choice', () => {
  it('with T·k/E integral every expert gets exactly C = T·k/E tokens: its top-C by S[:, e] (float64 reference)', () => {
    const T = 16;
    const router = new ExpertChoiceRouter({ kind: 'expert-choice' }, opts({ D, numExperts: E, topK: k }));
    const x = xParam(T, D);
    const r = router.route(x, ctx());
    const C = (T * k) / E;
    assert.equal(expertChoiceCapacity(T, k, E, 1), C);
    const logits = matmulNT(x.data, router.weight.data, T, D, E);
    const S = Array.from({ length: T }, (_, t) => softmaxRow(logits.subarray(t * E, t * E + E)));
    const ref: { t: number; e: number }[] = [];
    for (let e = 0; e < E; e++) for (const t of argTopK(S.map((row) => row[e]!), C)) ref.push({ t, e });
    assert.deepEqual(slotSet(r), slotSet({ tokens: ref.map((s) => s.t), experts: ref.map((s) => s.e) }));
    const load = new Array<number>(E).fill(0);
    for (const e of r.experts) load[e]!++;
    assert.deepEqual(load, new Array<number>(E).fill(C));
    for (const s of ref) close(gateOf(r, s.t, s.e), S[s.t]![s.e]!, 1e-12, `gate ${s.t}:${s.e}`);
    // Tokens get a variable number of experts (the point of expert choice).
    const perToken = new Array<number>(T).fill(0);
    for (const t of r.tokens) perToken[t]!++;
    assert.ok(new Set(perToken).size > 1, `per-token counts ${perToken.join(',')}`);
  });
  it('never exceeds capacity: C = ⌈cf · T · k / E⌉, capped at T', () => {
    for (const [T, cf] of [[7, 1], [13, 1.5], [3, 4], [1, 1], [64, 1.25]] as const) {
      const router = new ExpertChoiceRouter({ kind: 'expert-choice', capacityFactor: cf }, opts({ D, numExperts: E, topK: k }));
      const r = router.route(xParam(T, D, T), ctx(false));
      const C = Math.min(T, Math.ceil((cf * T * k) / E));
      const load = new Array<number>(E).fill(0);
      for (const e of r.experts) load[e]!++;
      assert.deepEqual(load, new Array<number>(E).fill(C), `T=${T} cf=${cf}`);
      assert.equal(new Set(slotSet(r)).size, r.tokens.length, 'no token twice in one expert');
    }
  });
  it('gradients (gates + z + orthogonality) w.r.t. W and x match finite differences', () => {
    const router = new ExpertChoiceRouter({ kind: 'expert-choice', capacityFactor: 1, zCoef: 0.1, orthoCoef: 0.05 }, opts({ D, numExperts: E, topK: k }, 3));
    const x = xParam(12, D, 4);
    checkGrads(() => project([router.route(x, ctx())]), [x, router.weight]);
  });
});
