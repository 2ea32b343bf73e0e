/** The zoo factory: every kind builds, names its parameters under the prefix; config.json router specs parse. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ZOO_KINDS, isZooRouterSpec, makeZooRouter, parseRouterSpec, zooExtraExperts } from '../../../src/moe/routers/zoo.js';
import { makeTrainableRouter } from '../../../src/moe/routers/trainable-factory.js';
import { topkAllowed } from '../../../src/moe/routers/zoo-common.js';
import { SPECS, argTopK, ctx, opts, rng, xParam } from './helpers.js';

describe('router zoo factory', () => {
  it('builds every zoo kind; all parameters are named under the layer prefix; routing returns well-formed slots', () => {
    assert.deepEqual(Object.keys(SPECS).sort(), [...ZOO_KINDS].sort());
    for (const [kind, spec] of Object.entries(SPECS)) {
      assert.ok(isZooRouterSpec(spec));
      const o = opts({ prefix: 'model.layers.5.mlp', layer: 5 });
      const r = makeZooRouter(spec, o);
      assert.equal(r.name, kind);
      assert.deepEqual([...r.extraExperts], zooExtraExperts(spec));
      assert.ok(r.params().length >= 1);
      assert.equal(r.params()[0]!.name, 'model.layers.5.mlp.gate.weight');
      for (const p of r.params()) assert.ok(p.name.startsWith('model.layers.5.mlp.') && p.requiresGrad, `${kind}: ${p.name}`);
      assert.equal(new Set(r.params().map((p) => p.name)).size, r.params().length, 'unique names');
      const res = r.route(xParam(9, o.D), ctx());
      assert.equal(res.tokens.length, res.experts.length);
      assert.equal(res.gates.size, res.experts.length);
      for (const e of res.experts) assert.ok(e >= 0 && e < o.numExperts + r.extraExperts.length);
      for (const t of res.tokens) assert.ok(t >= 0 && t < 9);
      // The trainable factory (other kinds' owner) delegates zoo kinds here.
      assert.equal(makeTrainableRouter(spec, o).name, kind);
    }
  });
  it('refuses the standard kinds (their trainable versions live beside their inference rules)', () => {
    assert.throws(() => makeZooRouter({ kind: 'softmax-topk', normTopK: true }, opts()), /no trainable router for softmax-topk/);
    assert.equal(isZooRouterSpec({ kind: 'topk-softmax' }), false);
  });
  it('parses config.json router objects and rejects bad ones with a clear message', () => {
    assert.deepEqual(parseRouterSpec({ kind: 'top-p', threshold: 0.5, lbCoef: 0.01 }), { kind: 'top-p', threshold: 0.5, lbCoef: 0.01 });
    assert.deepEqual(parseRouterSpec({ kind: 'softmax-topk', normTopK: false }), { kind: 'softmax-topk', normTopK: false });
    for (const s of Object.values(SPECS)) assert.deepEqual(parseRouterSpec(JSON.parse(JSON.stringify(s))), s);
    assert.throws(() => parseRouterSpec({ kind: 'magic' }), /unknown router kind "magic"/);
    assert.throws(() => parseRouterSpec({ kind: 'top-p' }), /missing option "threshold"/);
    assert.throws(() => parseRouterSpec({ kind: 'top-p', threshold: '0.5' }), /"threshold" must be a number/);
    assert.throws(() => parseRouterSpec({ kind: 'relu', lbCoef: 0.1 }), /unknown option "lbCoef"/);
    assert.throws(() => parseRouterSpec({ kind: 'null-experts', numNull: 1.5, normTopK: true }), /non-negative integer/);
    assert.throws(() => parseRouterSpec({ kind: 'balanced-softmax-topk', normTopK: true, capacityPriority: 'random' }), /one of position \| score/);
    assert.throws(() => parseRouterSpec([1]), /must be an object/);
  });
  it('extra experts: null-experts → zeros, moe-plus-plus → zero…, copy…, constant…; others none', () => {
    assert.deepEqual(zooExtraExperts({ kind: 'moe-plus-plus', zero: 2, copy: 1, constant: 2, gatingResidual: false }), ['zero', 'zero', 'copy', 'constant', 'constant']);
    assert.deepEqual(zooExtraExperts({ kind: 'null-experts', numNull: 3, normTopK: true }), ['zero', 'zero', 'zero']);
    assert.deepEqual(zooExtraExperts({ kind: 'relu' }), []);
  });
  it('top-k helper: selection (k ≤ 8) and sort (k > 8) paths agree with a reference, ties to the lower index, masks respected', () => {
    const r = rng(4);
    for (const n of [5, 20, 70]) {
      const row = Array.from({ length: n }, () => Math.round(r() * 6) / 2); // many ties
      const mask = Uint8Array.from({ length: n }, () => (r() < 0.8 ? 1 : 0));
      for (const k of [1, 3, 8, 9, 30, n]) {
        const out = new Int32Array(k);
        const m = topkAllowed(row, 0, n, k, out);
        assert.deepEqual(Array.from(out.subarray(0, m)), argTopK(row, k), `n=${n} k=${k}`);
        const mm = topkAllowed(row, 0, n, k, out, mask);
        assert.deepEqual(Array.from(out.subarray(0, mm)), argTopK(row, k, (i) => mask[i] === 1), `masked n=${n} k=${k}`);
      }
    }
  });
});
