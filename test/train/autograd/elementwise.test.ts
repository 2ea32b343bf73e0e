/** Elementwise ops against float64 central differences (see gradcheck.ts for the tolerance). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as ag from '../../../src/train/autograd/index.js';
import { avoid, gradcheck, inp, rng, uniform } from './gradcheck.js';

describe('autograd elementwise: binary ops and broadcasting', () => {
  const r = rng(1);
  const a = uniform(24, r, 2);
  const b = uniform(24, r, 2);
  const bias = uniform(6, r, 2);
  const sc = uniform(1, r, 2);

  for (const [name, op] of [['add', ag.add], ['sub', ag.sub], ['mul', ag.mul]] as const) {
    it(`${name}: equal shapes`, () => { gradcheck(([x, y]) => op(x!, y!), [inp(a, [4, 6]), inp(b, [4, 6])]); });
    it(`${name}: b broadcast over leading dims (bias-style)`, () => {
      gradcheck(([x, y]) => op(x!, y!), [inp(a, [2, 2, 6]), inp(bias, [6])]);
    });
    it(`${name}: b broadcast as [rows, cols] trailing block`, () => {
      gradcheck(([x, y]) => op(x!, y!), [inp(a, [2, 3, 4]), inp(Float64Array.from(a.subarray(0, 12)).map((v) => v * 0.7 + 0.1), [3, 4])]);
    });
    it(`${name}: scalar b`, () => { gradcheck(([x, y]) => op(x!, y!), [inp(a, [4, 6]), inp(sc, [1])]); });
    it(`${name}: broadcast a (smaller first operand)`, () => { gradcheck(([x, y]) => op(x!, y!), [inp(bias, [6]), inp(a, [4, 6])]); });
    it(`${name}: only one side requires a gradient`, () => {
      gradcheck(([x, y]) => op(x!, y!), [inp(a, [4, 6]), inp(bias, [6], true)]);
      gradcheck(([x, y]) => op(x!, y!), [inp(a, [4, 6], true), inp(bias, [6])]);
    });
  }

  it('broadcast output shape and values', () => {
    const x = ag.constant(Float64Array.of(1, 2, 3, 4, 5, 6), [2, 3]);
    const y = ag.constant(Float64Array.of(10, 20, 30), [3]);
    const s = ag.add(x, y);
    assert.deepEqual(s.shape, [2, 3]);
    assert.deepEqual([...s.data], [11, 22, 33, 14, 25, 36]);
    assert.deepEqual([...ag.sub(y, x).data], [9, 18, 27, 6, 15, 24]);
    assert.deepEqual([...ag.mul(x, ag.constant(Float64Array.of(2), [1])).data], [2, 4, 6, 8, 10, 12]);
    assert.throws(() => ag.add(x, ag.constant(new Float64Array(4), [4])), /broadcast/);
    // a per-row vector is not a trailing block, even though its size divides a's: rejected, not broadcast cyclically
    assert.throws(() => ag.mul(x, ag.constant(new Float64Array(2), [2])), /broadcast/);
    // a flattened trailing block is fine: [2, 2, 3] with [6]
    assert.deepEqual(ag.add(ag.constant(new Float64Array(12), [2, 2, 3]), ag.constant(new Float64Array(6), [6])).shape, [2, 2, 3]);
  });

  it('a Var used as both operands (x·x, x − x)', () => {
    gradcheck(([x]) => ag.mul(x!, x!), [inp(a, [24])]);
    gradcheck(([x]) => ag.add(ag.sub(x!, x!), ag.mul(x!, x!)), [inp(a, [24])]);
  });
});

describe('autograd elementwise: unary ops', () => {
  const r = rng(2);
  const x = avoid(uniform(30, r, 4), [0], 0.05);
  it('scale', () => { gradcheck(([v]) => ag.scale(v!, -1.75), [inp(x, [5, 6])]); });
  it('addScalar', () => { gradcheck(([v]) => ag.addScalar(v!, 0.3), [inp(x, [5, 6])]); });
  it('silu', () => { gradcheck(([v]) => ag.silu(v!), [inp(x, [5, 6])]); });
  it('sigmoid', () => { gradcheck(([v]) => ag.sigmoid(v!), [inp(x, [5, 6])]); });
  it('relu (away from 0)', () => { gradcheck(([v]) => ag.relu(v!), [inp(x, [5, 6])]); });
  it('tanh', () => { gradcheck(([v]) => ag.tanh(v!), [inp(x, [5, 6])]); });
  it('gelu (the derivative of the erf approximation actually evaluated)', () => { gradcheck(([v]) => ag.gelu(v!), [inp(x, [5, 6])]); });
  it('gelu near 0 and in the tails', () => {
    gradcheck(([v]) => ag.gelu(v!), [inp(Float64Array.of(-9, -5.5, -2.2, -0.01, 0.003, 0.02, 1.3, 3.9, 8), [9])]);
  });
  it('exp', () => { gradcheck(([v]) => ag.exp(v!), [inp(x, [5, 6])]); });
  it('log (positive inputs)', () => { gradcheck(([v]) => ag.log(v!), [inp(uniform(30, r, 2, 2.5), [30])]); });
  it('square', () => { gradcheck(([v]) => ag.square(v!), [inp(x, [5, 6])]); });
  it('abs (away from 0)', () => { gradcheck(([v]) => ag.abs(v!), [inp(x, [5, 6])]); });
  it('relu/abs subgradient 0 at exactly 0', () => {
    for (const op of [ag.relu, ag.abs]) {
      const v = ag.param(Float64Array.of(0, 0), [2]);
      const y = op(v);
      ag.backward(y, Float64Array.of(1, 1));
      assert.deepEqual([...v.grad!], [0, 0]);
    }
  });
});

describe('autograd elementwise: gatedAct', () => {
  const r = rng(3);
  const gate = avoid(uniform(40, r, 3), [0], 0.05);
  const up = uniform(40, r, 3);
  it('silu', () => { gradcheck(([g, u]) => ag.gatedAct('silu', g!, u!), [inp(gate, [5, 8]), inp(up, [5, 8])]); });
  it('gelu', () => { gradcheck(([g, u]) => ag.gatedAct('gelu', g!, u!), [inp(gate, [5, 8]), inp(up, [5, 8])]); });
  it('gpt_oss: values on both sides of the clamps (not at the kinks)', () => {
    const limit = 2.5;
    const opts = { alpha: 1.702, limit };
    // gate spans (−6, 6): some above the limit (constant region), up spans (−6, 6): some clamped on both sides.
    const g = avoid(uniform(48, r, 6), [limit, 0], 0.05);
    const u = avoid(uniform(48, r, 6), [limit, -limit], 0.05);
    let above = 0, clampedUp = 0;
    for (let i = 0; i < 48; i++) { if (g[i]! > limit) above++; if (Math.abs(u[i]!) > limit) clampedUp++; }
    assert.ok(above > 3 && clampedUp > 6, 'the test data exercises the clamps');
    gradcheck(([a, b]) => ag.gatedAct('gpt_oss', a!, b!, opts), [inp(g, [6, 8]), inp(u, [6, 8])]);
  });
  it('gpt_oss: default alpha/limit (1.702, 7)', () => {
    const g = avoid(uniform(32, r, 9), [7, 0], 0.05);
    const u = avoid(uniform(32, r, 9), [7, -7], 0.05);
    gradcheck(([a, b]) => ag.gatedAct('gpt_oss', a!, b!), [inp(g, [32]), inp(u, [32])]);
  });
  it('one side constant', () => {
    gradcheck(([g, u]) => ag.gatedAct('silu', g!, u!), [inp(gate, [40], true), inp(up, [40])]);
    gradcheck(([g, u]) => ag.gatedAct('gelu', g!, u!), [inp(gate, [40]), inp(up, [40], true)]);
  });
});
