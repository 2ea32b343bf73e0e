/** softmax, logSoftmax and the fused cross-entropy against float64 central differences. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as ag from '../../../src/train/autograd/index.js';
import { gradcheck, inp, rng, uniform } from './gradcheck.js';

const r = rng(30);

describe('autograd softmax family', () => {
  it('softmax', () => { gradcheck(([x]) => ag.softmax(x!), [inp(uniform(24, r, 3), [4, 6])]); });
  it('logSoftmax', () => { gradcheck(([x]) => ag.logSoftmax(x!), [inp(uniform(24, r, 3), [4, 6])]); });
  it('logSoftmax is stable for large logits', () => {
    const y = ag.logSoftmax(ag.constant(Float64Array.of(1000, 1000, 0), [1, 3]));
    assert.ok(Math.abs(y.data[0]! + Math.LN2) < 1e-12 && Number.isFinite(y.data[2]!));
    gradcheck(([x]) => ag.logSoftmax(x!), [inp(Float64Array.of(500, 501, 499, -300, -299, -302), [2, 3])]);
  });
  it('softmax rows sum to 1', () => {
    const y = ag.softmax(ag.constant(uniform(24, r, 5), [4, 6]));
    for (let i = 0; i < 4; i++) { let s = 0; for (let j = 0; j < 6; j++) s += y.data[i * 6 + j]!; assert.ok(Math.abs(s - 1) < 1e-14); }
  });
});

describe('autograd crossEntropy', () => {
  const T = 6, V = 7;
  it('all targets', () => {
    const targets = Int32Array.of(0, 6, 3, 3, 1, 5);
    gradcheck(([x]) => ag.crossEntropy(x!, targets), [inp(uniform(T * V, r, 3), [T, V])]);
  });
  it('ignored targets (−1) are excluded from the mean and get no gradient', () => {
    const targets = Int32Array.of(2, -1, 4, -1, -1, 0);
    const x = uniform(T * V, r, 3);
    gradcheck(([l]) => ag.crossEntropy(l!, targets), [inp(x, [T, V])]);
    const p = ag.param(Float64Array.from(x), [T, V]);
    const loss = ag.crossEntropy(p, targets);
    // mean over the 3 kept rows of logΣexp − x[target]
    let ref = 0;
    for (const t of [0, 2, 5]) {
      const row = x.subarray(t * V, t * V + V);
      const m = Math.max(...row);
      ref += m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0)) - row[targets[t]!]!;
    }
    assert.ok(Math.abs(loss.data[0]! - ref / 3) < 1e-14);
    ag.backward(loss);
    for (const t of [1, 3, 4]) for (let i = 0; i < V; i++) assert.equal(p.grad![t * V + i], 0);
  });
  it('equals mean(−logSoftmax[target]) built from other ops', () => {
    const targets = Int32Array.of(1, 2, 3, 4, 5, 6);
    const x = uniform(T * V, r, 3);
    const fused = ag.crossEntropy(ag.constant(x, [T, V]), targets);
    const flat = Int32Array.from(targets, (y, t) => t * V + y);
    const composed = ag.scale(ag.mean(ag.gatherElements(ag.logSoftmax(ag.constant(x, [T, V])), flat)), -1);
    assert.ok(Math.abs(fused.data[0]! - composed.data[0]!) < 1e-14);
  });
  it('stable for large logits', () => {
    gradcheck(([x]) => ag.crossEntropy(x!, Int32Array.of(1, 0)), [inp(Float64Array.of(800, 801, 799, -500, -501, -499), [2, 3])]);
    const l = ag.crossEntropy(ag.constant(Float64Array.of(1e4, 0, 0), [1, 3]), Int32Array.of(1));
    assert.ok(Math.abs(l.data[0]! - 1e4) < 1e-9);
  });
  it('all targets ignored → loss 0, zero gradient; bad targets throw', () => {
    const p = ag.param(uniform(6, r), [2, 3]);
    const l = ag.crossEntropy(p, Int32Array.of(-1, -1));
    assert.equal(l.data[0], 0);
    ag.backward(l);
    assert.ok((p.grad ?? new Float64Array(6)).every((g) => g === 0));
    assert.throws(() => ag.crossEntropy(p, Int32Array.of(3, 0)));
    assert.throws(() => ag.crossEntropy(p, Int32Array.of(-2, 0)));
    assert.throws(() => ag.crossEntropy(p, Int32Array.of(0)));
  });
});
