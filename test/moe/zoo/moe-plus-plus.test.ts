/**
 * moe-plus-plus: extra-id layout, gating residuals across layers through the carry, constant experts, the
 * heterogeneous load-balancing loss, gradients through two layers (gates, aux, constant-expert outputs).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { constant, type Var } from '../../../src/train/autograd/var.js';
import { add, mul } from '../../../src/train/autograd/ops/elementwise.js';
import { sum } from '../../../src/train/autograd/ops/reduce.js';
import { softmax } from '../../../src/train/autograd/ops/softmax.js';
import { MoePlusPlusRouter, MOEPP_CARRY } from '../../../src/moe/routers/moe-plus-plus.js';
import { switchLoadBalancingLoss } from '../../../src/moe/balance/switch-loss.js';
import { argTopK, checkGrads, close, ctx, gateOf, matmulNT, opts, project, randn, rng, slotSet, softmaxRow, xParam } from './helpers.js';

const T = 10, D = 6, E = 6, k = 2;
const spec = { kind: 'moe-plus-plus' as const, zero: 1, copy: 1, constant: 2, gatingResidual: true, lbCoef: 0.01, tau: 0.5 };
const Eall = E + 4;
const layer = (l: number, seed: number) => new MoePlusPlusRouter(spec, opts({ D, numExperts: E, topK: k, layer: l, prefix: `model.layers.${l}.mlp` }, seed));

describe('moe-plus-plus', () => {
  it('declares zero, copy, constant after the FFN experts and names its parameters under the prefix', () => {
    const r = layer(0, 1);
    assert.deepEqual(r.extraExperts, ['zero', 'copy', 'constant', 'constant']);
    assert.deepEqual(r.params().map((p) => `${p.name} [${p.shape.join(', ')}]`), [
      `model.layers.0.mlp.gate.weight [${Eall}, ${D}]`,
      `model.layers.0.mlp.gate.residual.weight [${Eall}, ${Eall}]`,
      `model.layers.0.mlp.constant_experts.0.vector [${D}]`,
      `model.layers.0.mlp.constant_experts.0.gate.weight [2, ${D}]`,
      `model.layers.0.mlp.constant_experts.1.vector [${D}]`,
      `model.layers.0.mlp.constant_experts.1.gate.weight [2, ${D}]`,
    ]);
  });
  it('gating residual: layer 1 logits = W₁x₁ + W_g·(layer 0 logits) through the carry; routing and τ-weighted LB (float64 reference)', () => {
    const r0 = layer(0, 1);
    const r1 = layer(1, 2);
    r1.residual!.data.set(randn(Eall * Eall, rng(3), 0.5));
    const x0 = xParam(T, D, 4);
    const x1 = xParam(T, D, 5);
    const c = ctx();
    const a = r0.route(x0, c);
    const b = r1.route(x1, c);
    const l0 = matmulNT(x0.data, r0.weight.data, T, D, Eall);
    close(a.logits.data[7]!, l0[7]!, 1e-12, 'layer 0 has no residual');
    const l1 = matmulNT(x1.data, r1.weight.data, T, D, Eall);
    const res = matmulNT(l0, r1.residual!.data, T, Eall, Eall);
    for (let i = 0; i < T * Eall; i++) close(b.logits.data[i]!, l1[i]! + res[i]!, 1e-12, `logit ${i}`);
    assert.equal(c.carry.get(MOEPP_CARRY), b.logits);
    const ref: { t: number; e: number; g: number }[] = [];
    for (let t = 0; t < T; t++) {
      const p = softmaxRow(Array.from({ length: Eall }, (_, e) => l1[t * Eall + e]! + res[t * Eall + e]!));
      for (const e of argTopK(p, k)) ref.push({ t, e, g: p[e]! });
    }
    assert.deepEqual(slotSet(b), slotSet({ tokens: ref.map((s) => s.t), experts: ref.map((s) => s.e) }));
    for (const s of ref) close(gateOf(b, s.t, s.e), s.g, 1e-12, `gate ${s.t}:${s.e}`);
    const eta = Array.from({ length: Eall }, (_, e) => (e < E ? 1 : 0.5));
    const lb = switchLoadBalancingLoss(softmax(constant(Float64Array.from(l1, (v, i) => v + res[i]!), [T, Eall])), Int32Array.from(ref.map((s) => s.e)), eta).data[0]!;
    close(b.aux.find((x) => x.name === 'load_balancing')!.loss.data[0]!, 0.01 * lb, 1e-12, 'heterogeneous LB');
  });
  it('gatingResidual: false ignores the carry', () => {
    const r = new MoePlusPlusRouter({ ...spec, gatingResidual: false }, opts({ D, numExperts: E, topK: k }));
    const x = xParam(T, D, 4);
    const c = ctx();
    c.carry.set(MOEPP_CARRY, constant(new Float64Array(T * Eall).fill(5), [T, Eall]));
    const l = matmulNT(x.data, r.weight.data, T, D, Eall);
    close(r.route(x, c).logits.data[3]!, l[3]!, 1e-12, 'no residual');
    assert.equal(r.params().length, 5);
  });
  it('constant expert: α₁·x + α₂·v with [α₁, α₂] = softmax(W_c x); zero/copy are not the router\'s business', () => {
    const r = layer(0, 1);
    const x = xParam(4, D, 6);
    const id = E + 3; // second constant expert
    const y = r.constantExpert(x, id).data;
    const Wc = r.constGates[1]!.data;
    const v = r.constVectors[1]!.data;
    for (let t = 0; t < 4; t++) {
      const a = softmaxRow(Array.from(matmulNT(x.data.subarray(t * D, t * D + D), Wc, 1, D, 2)));
      for (let c = 0; c < D; c++) close(y[t * D + c]!, a[0]! * x.data[t * D + c]! + a[1]! * v[c]!, 1e-12, `y[${t}, ${c}]`);
    }
    assert.throws(() => r.constantExpert(x, E + 1), /not a constant expert/);
  });
  it('gradients through two layers (gates, τ-LB, z, gating residual, constant-expert outputs) match finite differences', () => {
    const s2 = { ...spec, zCoef: 0.1, normTopK: true };
    const r0 = new MoePlusPlusRouter(s2, opts({ D, numExperts: E, topK: k, layer: 0, prefix: 'l0' }, 1));
    const r1 = new MoePlusPlusRouter(s2, opts({ D, numExperts: E, topK: k, layer: 1, prefix: 'l1' }, 2));
    r1.residual!.data.set(randn(Eall * Eall, rng(3), 0.5));
    const x0 = xParam(T, D, 4);
    const x1 = xParam(T, D, 5);
    const cw = randn(3 * D, rng(7));
    const build = () => {
      const c = ctx();
      const p = project([r0.route(x0, c), r1.route(x1, c)]);
      let F: Var = p.F;
      const y = r1.constantExpert(x1, E + 2);
      F = add(F, sum(mul(y, constant(Float64Array.from({ length: T * D }, (_, i) => cw[i % (3 * D)]!), [T, D]))));
      return { F, key: p.key };
    };
    checkGrads(build, [x0, x1, ...r0.params(), ...r1.params()]);
  });
});
