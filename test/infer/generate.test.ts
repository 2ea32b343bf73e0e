/** KV-cache decoding equals full recomputation; sampling follows its distribution; LM loss vs float64. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Fixture, maxAbsDiff } from '../helpers/fixtures.js';
import { loadModel } from '../../src/models/load.js';
import { Sampler, makeRng } from '../../src/infer/sampling.js';
import { lmLoss } from '../../src/infer/lm-loss.js';

describe('KV cache', () => {
  for (const name of ['qwen3_moe', 'mixtral']) {
    it(`${name}: prefill + one-token steps give the same logits as recomputing the whole sequence (1e-5)`, () => {
      const fx = new Fixture(name);
      const { model, spec } = loadModel(fx.dir);
      const V = spec.vocabSize;
      const S = fx.meta.seq;
      const ids = fx.ints('input_ids').slice(0, S);
      const full = model.forward(ids, 1).logits;
      const cache = model.newCache(1);
      const P = 5;
      const pre = model.forward(ids.slice(0, P), 1, cache).logits;
      assert.ok(maxAbsDiff(pre, full.subarray(0, P * V)).max < 1e-5);
      for (let s = P; s < S; s++) {
        const step = model.forward([ids[s]!], 1, cache).logits;
        const d = maxAbsDiff(step, full.subarray(s * V, (s + 1) * V)).max;
        assert.ok(d < 1e-5, `position ${s}: ${d}`);
      }
    });
  }
});

describe('sampling', () => {
  const logits = Float32Array.from([2, 1, 0.5, -1, -3]);
  const p = Array.from(logits, (v) => Math.exp(v));
  const z = p.reduce((a, b) => a + b, 0);
  it('greedy is argmax', () => assert.equal(new Sampler().next(logits, 0, 5), 0));
  it('temperature 1 samples the softmax distribution (20k draws, 4σ bounds)', () => {
    const s = new Sampler({ temperature: 1, seed: 5 });
    const N = 20000;
    const counts = new Array<number>(5).fill(0);
    for (let i = 0; i < N; i++) counts[s.next(logits, 0, 5)]!++;
    counts.forEach((c, i) => {
      const q = p[i]! / z;
      assert.ok(Math.abs(c / N - q) < 4 * Math.sqrt((q * (1 - q)) / N) + 1e-4, `token ${i}: ${c / N} vs ${q}`);
    });
  });
  it('top-p keeps the smallest nucleus reaching p', () => {
    const s = new Sampler({ temperature: 1, topP: 0.6, seed: 1 });
    // p ≈ [0.61, 0.22, 0.14, ...]: the nucleus for 0.6 is {0}.
    for (let i = 0; i < 200; i++) assert.equal(s.next(logits, 0, 5), 0);
  });
  it('same seed, same tokens', () => {
    const a = new Sampler({ temperature: 0.9, seed: 11 });
    const b = new Sampler({ temperature: 0.9, seed: 11 });
    for (let i = 0; i < 100; i++) assert.equal(a.next(logits, 0, 5), b.next(logits, 0, 5));
  });
  it('rng is uniform in [0, 1)', () => {
    const r = makeRng(3);
    let mean = 0;
    for (let i = 0; i < 10000; i++) { const v = r(); assert.ok(v >= 0 && v < 1); mean += v / 10000; }
    assert.ok(Math.abs(mean - 0.5) < 0.02);
  });
});

describe('lmLoss', () => {
  it('equals a float64 cross-entropy', () => {
    const B = 2, S = 4, V = 7;
    const rng = makeRng(9);
    const logits = Float32Array.from({ length: B * S * V }, () => rng() * 6 - 3);
    const ids = Array.from({ length: B * S }, () => Math.floor(rng() * V));
    let ref = 0;
    for (let b = 0; b < B; b++) for (let s = 0; s < S - 1; s++) {
      const row = Array.from(logits.subarray((b * S + s) * V, (b * S + s + 1) * V));
      const lse = Math.log(row.reduce((a, v) => a + Math.exp(v), 0));
      ref += lse - row[ids[b * S + s + 1]!]!;
    }
    ref /= B * (S - 1);
    assert.ok(Math.abs(lmLoss(logits, ids, B, S, V) - ref) < 1e-6);
  });
});
