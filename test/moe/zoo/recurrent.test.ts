/** recurrent (RMoE): GRU state carried across layers vs a float64 GRU, routing, carry checks, gradients. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { constant } from '../../../src/train/autograd/var.js';
import { RecurrentRouter, RMOE_CARRY } from '../../../src/moe/routers/recurrent-router.js';
import { argTopK, checkGrads, close, ctx, gateOf, matmulNT, opts, project, sigm, slotSet, softmaxRow, xParam } from './helpers.js';

const T = 7, D = 6, E = 8, k = 2, P = 4, H = 5;
const make = (l: number, seed: number) => new RecurrentRouter({ kind: 'recurrent', projDim: P, hiddenDim: H, normTopK: true, lbCoef: 0.1, zCoef: 0.05 },
  opts({ D, numExperts: E, topK: k, layer: l, prefix: `model.layers.${l}.mlp` }, seed));

/** PyTorch GRU cell in float64. */
function gruRef(r: RecurrentRouter, x: Float64Array, h: Float64Array): Float64Array {
  const xp = matmulNT(x, r.proj.data, T, D, P);
  const gi = matmulNT(xp, r.wIh.data, T, P, 3 * H);
  const gh = matmulNT(h, r.wHh.data, T, H, 3 * H);
  const out = new Float64Array(T * H);
  for (let t = 0; t < T; t++) for (let j = 0; j < H; j++) {
    const a = (g: number): number => gi[t * 3 * H + g * H + j]! + r.bIh.data[g * H + j]!;
    const b = (g: number): number => gh[t * 3 * H + g * H + j]! + r.bHh.data[g * H + j]!;
    const rr = sigm(a(0) + b(0));
    const z = sigm(a(1) + b(1));
    const n = Math.tanh(a(2) + rr * b(2));
    out[t * H + j] = (1 - z) * n + z * h[t * H + j]!;
  }
  return out;
}

describe('recurrent', () => {
  it('names its parameters under the layer prefix', () => {
    assert.deepEqual(make(3, 1).params().map((p) => `${p.name} [${p.shape.join(', ')}]`), [
      `model.layers.3.mlp.gate.weight [${E}, ${H}]`,
      `model.layers.3.mlp.router.proj.weight [${P}, ${D}]`,
      `model.layers.3.mlp.router.gru.weight_ih [${3 * H}, ${P}]`,
      `model.layers.3.mlp.router.gru.weight_hh [${3 * H}, ${H}]`,
      `model.layers.3.mlp.router.gru.bias_ih [${3 * H}]`,
      `model.layers.3.mlp.router.gru.bias_hh [${3 * H}]`,
    ]);
  });
  it('layer l routes on W·h_l with h_l = GRU(P·x_l, h_{l−1}), h_0 = 0, carried in ctx.carry (float64 reference)', () => {
    const r0 = make(0, 1);
    const r1 = make(1, 2);
    const x0 = xParam(T, D, 3);
    const x1 = xParam(T, D, 4);
    const c = ctx(false);
    r0.route(x0, c);
    const h0 = gruRef(r0, x0.data as Float64Array, new Float64Array(T * H));
    const carried = c.carry.get(RMOE_CARRY) as { data: Float64Array };
    for (let i = 0; i < T * H; i++) close(carried.data[i]!, h0[i]!, 1e-12, `h0[${i}]`);
    const res = r1.route(x1, c);
    const h1 = gruRef(r1, x1.data as Float64Array, h0);
    const logits = matmulNT(h1, r1.weight.data, T, H, E);
    for (let i = 0; i < T * E; i++) close(res.logits.data[i]!, logits[i]!, 1e-12, `logit ${i}`);
    const ref: { t: number; e: number; g: number }[] = [];
    for (let t = 0; t < T; t++) {
      const p = softmaxRow(logits.subarray(t * E, t * E + E));
      const top = argTopK(p, k);
      const z = top.reduce((a, e) => a + p[e]!, 0);
      for (const e of top) ref.push({ t, e, g: p[e]! / z });
    }
    assert.deepEqual(slotSet(res), slotSet({ tokens: ref.map((s) => s.t), experts: ref.map((s) => s.e) }));
    for (const s of ref) close(gateOf(res, s.t, s.e), s.g, 1e-12, `gate ${s.t}:${s.e}`);
    // The state matters: the same layer without the carry routes differently.
    const alone = make(1, 2).route(x1, ctx(false));
    assert.notDeepEqual(Array.from(alone.logits.data), Array.from(res.logits.data));
  });
  it('rejects a carried state of the wrong shape', () => {
    const c = ctx();
    c.carry.set(RMOE_CARRY, constant(new Float64Array(T * (H + 1)), [T, H + 1]));
    assert.throws(() => make(1, 2).route(xParam(T, D), c), /carried state/);
  });
  it('gradients through two layers (gates + LB + z of both, through the carried GRU state) match finite differences', () => {
    const r0 = make(0, 1);
    const r1 = make(1, 2);
    const x0 = xParam(T, D, 3);
    const x1 = xParam(T, D, 4);
    checkGrads(() => { const c = ctx(); return project([r0.route(x0, c), r1.route(x1, c)]); }, [x0, x1, ...r0.params(), ...r1.params()]);
  });
});
