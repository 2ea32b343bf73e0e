/** relu (ReMoE): slots = positive ReLU gates, L1 penalty values, λ adapting toward the target sparsity, gradients. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { backward, noGrad } from '../../../src/train/autograd/var.js';
import { add, scale } from '../../../src/train/autograd/ops/elementwise.js';
import { sum } from '../../../src/train/autograd/ops/reduce.js';
import { ReluRouter, adaptL1 } from '../../../src/moe/routers/relu-router.js';
import { checkGrads, close, ctx, gateOf, matmulNT, opts, project, slotSet, xParam } from './helpers.js';

const T = 12, D = 6, E = 8, k = 2;

describe('relu', () => {
  it('slots are exactly the positive entries of ReLU(W x) with gate = the ReLU value; L1 (balanced and plain) vs float64', () => {
    for (const balancedL1 of [true, false]) {
      const router = new ReluRouter({ kind: 'relu', l1Init: 0.05, balancedL1 }, opts({ D, numExperts: E, topK: k }));
      const x = xParam(T, D);
      const r = router.route(x, ctx());
      const R = Array.from(matmulNT(x.data, router.weight.data, T, D, E), (v) => Math.max(0, v));
      const ref: { t: number; e: number }[] = [];
      const count = new Array<number>(E).fill(0);
      R.forEach((v, i) => { if (v > 0) { ref.push({ t: Math.floor(i / E), e: i % E }); count[i % E]!++; } });
      assert.deepEqual(slotSet(r), slotSet({ tokens: ref.map((s) => s.t), experts: ref.map((s) => s.e) }));
      for (const s of ref) close(gateOf(r, s.t, s.e), R[s.t * E + s.e]!, 1e-12, `gate ${s.t}:${s.e}`);
      let l1 = 0;
      R.forEach((v, i) => { l1 += (balancedL1 ? (E * count[i % E]!) / (k * T) : 1) * v; });
      close(r.aux.find((a) => a.name === 'relu_l1')!.loss.data[0]!, (0.05 * l1) / T, 1e-12, 'L1');
      const perToken = new Array<number>(T).fill(0);
      for (const t of r.tokens) perToken[t]!++;
      assert.ok(new Set(perToken).size > 1, 'variable experts per token');
      close(router.sparsity([r]), 1 - ref.length / (T * E), 1e-15, 'sparsity');
    }
  });
  it('λ update: ×α when denser than the target, ÷α when sparser, unchanged at the target', () => {
    assert.equal(adaptL1(1, 0.5, 0.75, 1.2), 1.2);
    close(adaptL1(1, 0.9, 0.75, 1.2), 1 / 1.2, 1e-15, 'sparser');
    assert.equal(adaptL1(1, 0.75, 0.75, 1.2), 1);
    const router = new ReluRouter({ kind: 'relu', l1Init: 1e-3 }, opts({ D, numExperts: E, topK: k }));
    const r = router.route(xParam(T, D), ctx());
    assert.ok(router.sparsity([r]) < router.targetSparsity, 'a fresh router is denser than 1 − k/E');
    router.afterStep([r]);
    close(router.lambda, 1.2e-3, 1e-15, 'λ grew');
    assert.deepEqual(router.state(), { 'model.layers.0.mlp.gate.l1_coef': [router.lambda] });
  });
  it('toy training loop: with the adaptive λ, sparsity moves to and settles near the target 1 − k/E', () => {
    const Tt = 64;
    const router = new ReluRouter({ kind: 'relu', l1Init: 1e-4, l1Multiplier: 1.2 }, opts({ D, numExperts: E, topK: k }, 3));
    // A constant input feature gives the linear router a bias, which is how it can switch experts off for most tokens.
    const x = xParam(Tt, D, 4);
    for (let t = 0; t < Tt; t++) x.data[t * D + D - 1] = 1;
    // A task loss that wants large gates (−mean Σ gates), against the adaptive L1 that wants zeros.
    const sparsities: number[] = [];
    for (let step = 0; step < 400; step++) {
      router.weight.zeroGrad();
      const r = router.route(x, ctx());
      const l1 = r.aux.find((a) => a.name === 'relu_l1')!.loss;
      backward(add(scale(sum(r.gates), -0.05 / Tt), l1));
      noGrad(() => { const w = router.weight.data, g = router.weight.grad!; for (let i = 0; i < w.length; i++) w[i]! -= 0.5 * g[i]!; });
      router.afterStep([r]);
      sparsities.push(router.sparsity([r]));
    }
    const target = 1 - k / E;
    assert.ok(sparsities[0]! < target - 0.15, `starts dense: ${sparsities[0]}`);
    const tail = sparsities.slice(-200);
    const mean = tail.reduce((a, b) => a + b, 0) / tail.length;
    assert.ok(Math.abs(mean - target) < 0.06, `settles near ${target}: mean of the last 200 steps ${mean}`);
  });
  it('gradients (gates + L1 + z + orthogonality) w.r.t. W and x match finite differences', () => {
    const router = new ReluRouter({ kind: 'relu', l1Init: 0.3, zCoef: 0.1, orthoCoef: 0.05 }, opts({ D, numExperts: E, topK: k }, 5));
    const x = xParam(T, D, 6);
    checkGrads(() => project([router.route(x, ctx())]), [x, router.weight]);
  });
});
