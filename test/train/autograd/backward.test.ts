/** backward() semantics, and a check that the gradient checker itself catches wrong gradients. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as ag from '../../../src/train/autograd/index.js';
import { gradcheck, inp, rng, uniform } from './gradcheck.js';

describe('autograd backward()', () => {
  it('a Var used twice gets both contributions: d(x·x + x)/dx = 2x + 1', () => {
    const x = ag.param(Float64Array.of(1.5, -2, 0.25), [3]);
    const y = ag.sum(ag.add(ag.mul(x, x), x));
    ag.backward(y);
    assert.deepEqual([...x.grad!], [4, -3, 1.5]);
  });
  it('a diamond (x → a → b, c = a·b) runs each node after all its consumers', () => {
    const r = rng(60);
    gradcheck(([x]) => {
      const a = ag.tanh(x!);
      const b = ag.exp(ag.scale(a, 0.5));
      return ag.sum(ag.mul(ag.mul(a, b), a));
    }, [inp(uniform(5, r), [5])]);
  });
  it('gradients accumulate across backward calls until zeroGrad', () => {
    const w = ag.param(Float64Array.of(1, 2), [2]);
    const loss = (): ag.Var => ag.sum(ag.square(w));
    ag.backward(loss());
    assert.deepEqual([...w.grad!], [2, 4]);
    ag.backward(loss());
    assert.deepEqual([...w.grad!], [4, 8]);
    w.zeroGrad();
    assert.equal(w.grad, null);
    ag.backward(loss());
    assert.deepEqual([...w.grad!], [2, 4]);
  });
  it('noGrad records nothing', () => {
    const w = ag.param(Float32Array.of(1, 2, 3), [3]);
    const y = ag.noGrad(() => ag.sum(ag.mul(w, w)));
    assert.equal(y.requiresGrad, false);
    assert.equal(y.parents.length, 0);
    assert.equal(y.backwardFn, null);
    assert.equal(y.data[0], 14);
    assert.equal(ag.isGradEnabled(), true);
    assert.throws(() => ag.backward(y), /does not depend/);
    assert.equal(w.grad, null);
    // and the flag is restored when the body throws
    assert.throws(() => ag.noGrad(() => { throw new Error('boom'); }));
    assert.equal(ag.isGradEnabled(), true);
  });
  it('ops on constants only are not recorded', () => {
    const y = ag.mul(ag.constant(Float32Array.of(1, 2), [2]), ag.constant(Float32Array.of(3, 4), [2]));
    assert.equal(y.requiresGrad, false);
    assert.equal(y.parents.length, 0);
  });
  it('backward on a non-scalar needs a seed of the right size', () => {
    const x = ag.param(Float32Array.of(1, 2, 3), [3]);
    const y = ag.scale(x, 2);
    assert.throws(() => ag.backward(y), /seed/);
    assert.throws(() => ag.backward(y, Float32Array.of(1, 1)), /seed/);
    ag.backward(y, Float32Array.of(1, 0, -1));
    assert.deepEqual([...x.grad!], [2, 0, -2]);
  });
  it('intermediate gradients are released; leaves keep theirs', () => {
    const x = ag.param(Float32Array.of(1, 2), [2]);
    const h = ag.scale(x, 3);
    const y = ag.sum(h);
    ag.backward(y);
    assert.equal(h.grad, null);
    assert.deepEqual([...x.grad!], [3, 3]);
  });
  it('float32 in → float32 out and float32 gradients', () => {
    const x = ag.param(Float32Array.of(0.5, -1, 2, 3), [2, 2]);
    const y = ag.crossEntropy(ag.softmax(ag.rmsNorm(x, ag.constant(Float32Array.of(1, 1), [2]), 1e-6)), Int32Array.of(0, 1));
    assert.ok(y.data instanceof Float32Array);
    ag.backward(y);
    assert.ok(x.grad instanceof Float32Array);
  });
  it('a deep chain (20000 ops) does not overflow the stack', () => {
    const x = ag.param(Float64Array.of(1), [1]);
    let y = x;
    for (let i = 0; i < 20000; i++) y = ag.addScalar(y, 0);
    ag.backward(y);
    assert.equal(x.grad![0], 1);
  });
});

describe('the gradient checker', () => {
  it('rejects a wrong gradient', () => {
    // y = x², with a backward that forgets the factor 2
    const wrong = (x: ag.Var): ag.Var => ag.result('wrongSquare', x.data.map((v) => v * v), x.shape, [x], (o) => {
      const g = x.g();
      for (let i = 0; i < x.size; i++) g[i]! += o.grad![i]! * x.data[i]!;
    });
    assert.throws(() => gradcheck(([x]) => wrong(x!), [inp(Float64Array.of(0.5, 1.5), [2])]), /analytic/);
  });
  it('rejects a backward that overwrites instead of accumulating', () => {
    const overwrite = (x: ag.Var): ag.Var => ag.result('overwrite', x.data.map((v) => 3 * v), x.shape, [x], (o) => {
      const g = x.g();
      for (let i = 0; i < x.size; i++) g[i] = 3 * o.grad![i]!;
    });
    assert.throws(() => gradcheck(([x]) => overwrite(x!), [inp(Float64Array.of(0.5, 1.5), [2])]));
  });
  it('rejects an op whose float64 forward rounds through float32', () => {
    const lossy = (x: ag.Var): ag.Var => ag.result('lossy', Float32Array.from(x.data), x.shape, [x], (o) => {
      const g = x.g();
      for (let i = 0; i < x.size; i++) g[i]! += o.grad![i]!;
    });
    assert.throws(() => gradcheck(([x]) => lossy(x!), [inp(Float64Array.of(0.1), [1])]), /float64/);
  });
});
