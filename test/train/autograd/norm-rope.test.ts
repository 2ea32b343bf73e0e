/** rmsNorm, layerNorm and rope against float64 central differences. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as ag from '../../../src/train/autograd/index.js';
import { ropeTable, type RopeTable } from '../../../src/nn/rope.js';
import { gradcheck, inp, rng, uniform } from './gradcheck.js';

const r = rng(20);

describe('autograd norms', () => {
  it('rmsNorm over rows', () => {
    gradcheck(([x, w]) => ag.rmsNorm(x!, w!, 1e-5), [inp(uniform(24, r, 2), [4, 6]), inp(uniform(6, r, 1, 1), [6])]);
  });
  it('rmsNorm over groups smaller than a row (per-head q/k norm)', () => {
    gradcheck(([x, w]) => ag.rmsNorm(x!, w!, 1e-6), [inp(uniform(36, r, 2), [3, 12]), inp(uniform(4, r, 1, 1), [4])]);
  });
  it('rmsNorm with a large eps (the eps term matters) and a constant weight', () => {
    gradcheck(([x, w]) => ag.rmsNorm(x!, w!, 0.5), [inp(uniform(24, r, 0.5), [4, 6]), inp(uniform(6, r, 1, 1), [6], true)]);
  });
  it('rmsNorm rejects a weight that does not divide x', () => {
    assert.throws(() => ag.rmsNorm(ag.constant(new Float64Array(10), [10]), ag.constant(new Float64Array(4), [4]), 1e-6));
  });
  it('layerNorm with bias', () => {
    gradcheck(([x, w, b]) => ag.layerNorm(x!, w!, b!, 1e-5),
      [inp(uniform(24, r, 2, 0.5), [4, 6]), inp(uniform(6, r, 1, 1), [6]), inp(uniform(6, r), [6])]);
  });
  it('layerNorm without bias, eps large', () => {
    gradcheck(([x, w]) => ag.layerNorm(x!, w!, undefined, 0.3), [inp(uniform(30, r, 1), [5, 6]), inp(uniform(6, r, 1, 1), [6])]);
  });
});

describe('autograd rope', () => {
  const T = 5, H = 3, D = 8;
  const positions = [0, 3, 7, 100, 2047];
  const x = uniform(T * H * D, r, 1.5);
  const table = (interleaved: boolean, dim = D): RopeTable => ropeTable({ type: 'default', theta: 10000, dim, interleaved }, 4096);
  for (const interleaved of [false, true]) {
    const layout = interleaved ? 'interleaved' : 'half';
    it(`${layout} layout, full rotary`, () => {
      gradcheck(([v]) => ag.rope(v!, table(interleaved), H, D, positions), [inp(x, [T, H * D])]);
    });
    it(`${layout} layout, partial rotary at an offset`, () => {
      // rotate dims [2, 6) of each 8-dim head; dims 0, 1, 6, 7 pass through
      gradcheck(([v]) => ag.rope(v!, table(interleaved, 4), H, D, positions, 2), [inp(x, [T, H * D])]);
      const y = ag.rope(ag.constant(Float64Array.from(x), [T, H * D]), table(interleaved, 4), H, D, positions, 2);
      for (let i = 0; i < T * H; i++) for (const d of [0, 1, 6, 7]) assert.equal(y.data[i * D + d], x[i * D + d]);
    });
  }
  it('YaRN table: attentionScale ≠ 1 multiplies the map (the backward is its transpose, not its inverse)', () => {
    const t = ropeTable({ type: 'yarn', theta: 150000, dim: D, interleaved: false, factor: 32, originalMaxPositions: 64, truncate: false }, 4096);
    assert.ok(t.attentionScale > 1.1);
    gradcheck(([v]) => ag.rope(v!, t, H, D, positions), [inp(x, [T, H * D])]);
    // the norm of each rotated pair grows by attentionScale
    const y = ag.rope(ag.constant(Float64Array.from(x), [T, H * D]), t, H, D, positions);
    const n0 = Math.hypot(x[0]!, x[D / 2]!);
    const n1 = Math.hypot(y.data[0]!, y.data[D / 2]!);
    assert.ok(Math.abs(n1 / n0 - t.attentionScale) < 1e-6);
  });
  it('longrope: the long table is picked from max(position) + 1', () => {
    const spec = {
      type: 'longrope' as const, theta: 10000, dim: D, interleaved: false, factor: 4, originalMaxPositions: 64,
      shortFactor: [1, 1.5, 2, 3], longFactor: [2, 4, 8, 16],
    };
    const t = ropeTable(spec, 256);
    gradcheck(([v]) => ag.rope(v!, t, H, D, [0, 1, 2, 3, 63]), [inp(x, [T, H * D])]);
    gradcheck(([v]) => ag.rope(v!, t, H, D, [0, 1, 2, 3, 64]), [inp(x, [T, H * D])]);
    const a = ag.rope(ag.constant(Float64Array.from(x), [T, H * D]), t, H, D, [0, 1, 2, 3, 63]);
    const b = ag.rope(ag.constant(Float64Array.from(x), [T, H * D]), t, H, D, [0, 1, 2, 3, 64]);
    assert.notEqual(a.data[H * D + 1], b.data[H * D + 1], 'row 1 uses a different table once a position passes the threshold');
  });
  it('rejects a rotary range past the head', () => {
    assert.throws(() => ag.rope(ag.constant(new Float64Array(T * H * D), [T, H * D]), table(false), H, D, positions, 2));
  });
});
