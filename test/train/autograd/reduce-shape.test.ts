/** Reductions, views, slices, concatenation, gathers/scatters, embedding and linear against central differences. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as ag from '../../../src/train/autograd/index.js';
import { gradcheck, inp, rng, uniform } from './gradcheck.js';

const r = rng(10);
const x24 = uniform(24, r, 2);

describe('autograd reductions', () => {
  it('sum', () => { gradcheck(([a]) => ag.sum(a!), [inp(x24, [4, 6])]); });
  it('mean', () => { gradcheck(([a]) => ag.mean(a!), [inp(x24, [4, 6])]); });
  it('sumCols → [rows]', () => {
    const y = ag.sumCols(ag.constant(Float64Array.of(1, 2, 3, 4, 5, 6), [2, 3]));
    assert.deepEqual(y.shape, [2]);
    assert.deepEqual([...y.data], [6, 15]);
    gradcheck(([a]) => ag.sumCols(a!), [inp(x24, [2, 3, 4])]);
  });
  it('meanRows → [cols]', () => {
    const y = ag.meanRows(ag.constant(Float64Array.of(1, 2, 3, 4, 5, 6), [2, 3]));
    assert.deepEqual(y.shape, [3]);
    assert.deepEqual([...y.data], [2.5, 3.5, 4.5]);
    gradcheck(([a]) => ag.meanRows(a!), [inp(x24, [2, 3, 4])]);
  });
  it('logSumExp (stable for large logits)', () => {
    gradcheck(([a]) => ag.logSumExp(a!), [inp(x24, [4, 6])]);
    const big = ag.constant(Float64Array.of(1000, 1000, -1000, 0), [2, 2]);
    const y = ag.logSumExp(big);
    assert.ok(Math.abs(y.data[0]! - (1000 + Math.LN2)) < 1e-9 && Math.abs(y.data[1]!) < 1e-12);
    gradcheck(([a]) => ag.logSumExp(a!), [inp(Float64Array.of(300, 301, 299.5, -40, -41, -39), [2, 3])]);
  });
  it('scalar shapes are [1]', () => {
    for (const op of [ag.sum, ag.mean]) assert.deepEqual(op(ag.constant(x24, [4, 6])).shape, [1]);
  });
});

describe('autograd shape ops', () => {
  it('reshape shares the buffer (no copy) and maps the gradient back', () => {
    const a = ag.param(Float64Array.from(x24), [4, 6]);
    const y = ag.reshape(a, [2, 12]);
    assert.equal(y.data, a.data);
    assert.deepEqual(ag.reshape(a, [3, -1]).shape, [3, 8]);
    assert.throws(() => ag.reshape(a, [5, 5]));
    gradcheck(([v]) => ag.reshape(v!, [2, 3, 4]), [inp(x24, [4, 6])]);
  });
  it('sliceCols', () => {
    const y = ag.sliceCols(ag.constant(Float64Array.of(1, 2, 3, 4, 5, 6), [2, 3]), 1, 3);
    assert.deepEqual(y.shape, [2, 2]);
    assert.deepEqual([...y.data], [2, 3, 5, 6]);
    gradcheck(([v]) => ag.sliceCols(v!, 2, 5), [inp(x24, [2, 2, 6])]);
  });
  it('concatCols', () => {
    const y = ag.concatCols([ag.constant(Float64Array.of(1, 2, 3, 4), [2, 2]), ag.constant(Float64Array.of(5, 6), [2, 1])]);
    assert.deepEqual(y.shape, [2, 3]);
    assert.deepEqual([...y.data], [1, 2, 5, 3, 4, 6]);
    gradcheck(([p, q, c]) => ag.concatCols([p!, q!, c!]), [inp(uniform(8, r), [4, 2]), inp(uniform(12, r), [4, 3]), inp(uniform(4, r), [4, 1], true)]);
  });
  it('slice + concat round trip (a Var feeding two slices)', () => {
    gradcheck(([v]) => ag.concatCols([ag.sliceCols(v!, 3, 6), ag.sliceCols(v!, 0, 4)]), [inp(x24, [4, 6])]);
  });
  it('sliceRows is a view', () => {
    const a = ag.param(Float64Array.from(x24), [4, 6]);
    const y = ag.sliceRows(a, 1, 3);
    assert.deepEqual(y.shape, [2, 6]);
    assert.equal(y.data.buffer, a.data.buffer);
    assert.deepEqual([...y.data], [...x24.subarray(6, 18)]);
    gradcheck(([v]) => ag.sliceRows(v!, 1, 3), [inp(x24, [4, 2, 3])]);
  });
  it('concatRows', () => {
    const y = ag.concatRows([ag.constant(Float64Array.of(1, 2), [1, 2]), ag.constant(Float64Array.of(3, 4, 5, 6), [2, 2])]);
    assert.deepEqual(y.shape, [3, 2]);
    assert.deepEqual([...y.data], [1, 2, 3, 4, 5, 6]);
    assert.throws(() => ag.concatRows([ag.constant(new Float64Array(2), [1, 2]), ag.constant(new Float64Array(3), [1, 3])]));
    gradcheck(([p, q]) => ag.concatRows([p!, q!, p!]), [inp(uniform(6, r), [2, 3]), inp(uniform(9, r), [3, 3])]);
  });
  it('gatherRows (repeated indices accumulate)', () => {
    const idx = Int32Array.of(3, 0, 3, 1, 3);
    const y = ag.gatherRows(ag.constant(Float64Array.from(x24), [4, 6]), idx);
    assert.deepEqual(y.shape, [5, 6]);
    assert.deepEqual([...y.data.subarray(6, 12)], [...x24.subarray(0, 6)]);
    gradcheck(([v]) => ag.gatherRows(v!, idx), [inp(x24, [4, 6])]);
    assert.throws(() => ag.gatherRows(ag.constant(x24, [4, 6]), Int32Array.of(4)));
  });
  it('scatterAddRows (colliding rows add)', () => {
    const idx = Int32Array.of(2, 0, 2);
    const y = ag.scatterAddRows(ag.constant(Float64Array.of(1, 2, 3, 4, 5, 6), [3, 2]), idx, 4);
    assert.deepEqual(y.shape, [4, 2]);
    assert.deepEqual([...y.data], [3, 4, 0, 0, 6, 8, 0, 0]);
    gradcheck(([v]) => ag.scatterAddRows(v!, idx, 4), [inp(uniform(12, r), [3, 4])]);
  });
  it('gather → scatter (MoE dispatch/combine shape)', () => {
    const idx = Int32Array.of(1, 3, 0, 1);
    gradcheck(([v, w]) => ag.scatterAddRows(ag.scaleRows(ag.gatherRows(v!, idx), w!), idx, 4), [inp(x24, [4, 6]), inp(uniform(4, r), [4])]);
  });
  it('gatherElements', () => {
    const idx = Int32Array.of(5, 5, 0, 23, 7);
    const y = ag.gatherElements(ag.constant(Float64Array.from(x24), [4, 6]), idx);
    assert.deepEqual(y.shape, [5]);
    assert.equal(y.data[3], x24[23]);
    gradcheck(([v]) => ag.gatherElements(v!, idx), [inp(x24, [4, 6])]);
  });
  it('scaleRows', () => {
    gradcheck(([v, s]) => ag.scaleRows(v!, s!), [inp(x24, [4, 6]), inp(uniform(4, r), [4])]);
    gradcheck(([v, s]) => ag.scaleRows(v!, s!), [inp(x24, [4, 6], true), inp(uniform(4, r), [4])]);
  });
  it('transpose', () => {
    const y = ag.transpose(ag.constant(Float64Array.of(1, 2, 3, 4, 5, 6), [2, 3]));
    assert.deepEqual(y.shape, [3, 2]);
    assert.deepEqual([...y.data], [1, 4, 2, 5, 3, 6]);
    gradcheck(([v]) => ag.transpose(v!), [inp(x24, [4, 6])]);
  });
});

describe('autograd embedding and linear', () => {
  it('embedding (repeated ids scatter-add)', () => {
    const ids = [2, 0, 2, 4];
    const y = ag.embedding(ag.constant(Float64Array.from(uniform(15, r)), [5, 3]), ids);
    assert.deepEqual(y.shape, [4, 3]);
    gradcheck(([w]) => ag.embedding(w!, ids), [inp(uniform(15, r), [5, 3])]);
    assert.throws(() => ag.embedding(ag.constant(new Float64Array(15), [5, 3]), [5]));
  });
  it('linear with and without bias (float64 path)', () => {
    gradcheck(([x, w, b]) => ag.linear(x!, w!, b!), [inp(uniform(15, r), [5, 3]), inp(uniform(12, r), [4, 3]), inp(uniform(4, r), [4])]);
    gradcheck(([x, w]) => ag.linear(x!, w!), [inp(uniform(15, r), [5, 3]), inp(uniform(12, r), [4, 3])]);
    gradcheck(([x, w]) => ag.linear(x!, w!), [inp(uniform(15, r), [5, 3], true), inp(uniform(12, r), [4, 3])]);
  });
});
