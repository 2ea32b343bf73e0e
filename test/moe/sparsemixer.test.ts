/**
 * SparseMixer router (Phi-3.5-MoE, eval mode) against a float64 re-implementation of transformers' `sparsemixer`
 * (eval branch), written here tensor-op by tensor-op: max → relative-distance mask → masked softmax → gather, then
 * the same with the first choice scattered to −∞.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SparseMixerRouter } from '../../src/moe/routers/sparsemixer.js';

/** One row of transformers' sparsemixer(scores, jitter_eps, training=False), in float64. */
function refRow(scores: number[], jitterEps: number): { experts: [number, number]; gates: [number, number] } {
  const argmaxFirst = (v: number[]): number => v.reduce((b, x, i) => (x > v[b]! ? i : b), 0);
  const softmax = (v: number[]): number[] => {
    const m = Math.max(...v);
    const e = v.map((x) => Math.exp(x - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((x) => x / s);
  };
  // first pass
  const thr1 = Math.max(...scores);
  const sel1 = argmaxFirst(scores);
  const factor1 = scores.map((s) => Math.max(Math.abs(s), thr1)); // scores.abs().clamp(min=threshold)
  const mask1 = scores.map((s, i) => (thr1 - s) / factor1[i]! > 2 * jitterEps);
  const masked1 = scores.map((s, i) => (mask1[i] ? -Infinity : s));
  const gate1 = softmax(masked1)[sel1]!;
  // second pass: first choice scattered to -inf; the mask still compares against the original scores
  const maskedScores = scores.map((s, i) => (i === sel1 ? -Infinity : s));
  const thr2 = Math.max(...maskedScores);
  const sel2 = argmaxFirst(maskedScores);
  const factor2 = scores.map((s) => Math.max(Math.abs(s), thr2));
  const mask2 = scores.map((s, i) => (thr2 - s) / factor2[i]! > 2 * jitterEps);
  const masked2 = maskedScores.map((s, i) => (mask2[i] ? -Infinity : s));
  const gate2 = softmax(masked2)[sel2]!;
  return { experts: [sel1, sel2], gates: [gate1, gate2] };
}

function check(rows: number[][], eps: number): void {
  const E = rows[0]!.length;
  const T = rows.length;
  const logits = Float32Array.from(rows.flat());
  const r = new SparseMixerRouter(E, 2, eps).route(logits, T);
  assert.equal(r.T, T);
  assert.equal(r.k, 2);
  assert.equal(r.E, E);
  assert.equal(r.logits, logits);
  for (let t = 0; t < T; t++) {
    // reference from the same f32-rounded values the router sees
    const want = refRow(Array.from(logits.subarray(t * E, t * E + E)), eps);
    assert.deepEqual([r.experts[2 * t], r.experts[2 * t + 1]], want.experts, `row ${t} experts`);
    for (let j = 0; j < 2; j++) {
      const got = r.gates[2 * t + j]!;
      assert.ok(Math.abs(got - want.gates[j]!) < 1e-6, `row ${t} gate ${j}: ${got} vs ${want.gates[j]}`);
    }
  }
}

/** Deterministic pseudo-random logits (LCG). */
function rows(T: number, E: number, scale: number, seed: number): number[][] {
  let s = seed >>> 0;
  const rnd = (): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  return Array.from({ length: T }, () => Array.from({ length: E }, () => rnd() * scale));
}

describe('SparseMixerRouter', () => {
  it('eps = 0: top-2 by logit, both gates exactly 1', () => {
    const r = new SparseMixerRouter(4, 2, 0).route(Float32Array.from([0.1, 2.0, -1.0, 1.5]), 1);
    assert.deepEqual(Array.from(r.experts), [1, 3]);
    assert.deepEqual(Array.from(r.gates), [1, 1]);
    check(rows(16, 8, 3, 1), 0);
  });

  it('eps > 0: logits within the relative 2·eps band share the softmax', () => {
    // max 2.0; 1.97 is within 2·0.01 relative ((2 − 1.97)/2 = 0.015 ≤ 0.02), 1.5 is not.
    const logits = [1.5, 2.0, 1.97, -3.0];
    const r = new SparseMixerRouter(4, 2, 0.01).route(Float32Array.from(logits), 1);
    assert.deepEqual(Array.from(r.experts), [1, 2]);
    const f = Array.from(Float32Array.from(logits));
    const g1 = 1 / (1 + Math.exp(f[2]! - f[1]!));
    assert.ok(Math.abs(r.gates[0]! - g1) < 1e-7);
    // second pass: threshold 1.97, 1.5 is (1.97 − 1.5)/1.97 ≈ 0.24 away → masked; gate 1
    assert.ok(Math.abs(r.gates[1]! - 1) < 1e-7);
    check([logits], 0.01);
  });

  it('negative logits: the clamp of |s| to the threshold sets the scale', () => {
    // all negative: threshold −1; factor = max(|s|, −1) = |s|
    check([[-1.0, -1.01, -1.05, -4.0, -1.015, -0.99]], 0.01);
    check([[-0.5, -0.51, 0.0, -0.005, -3.0, -0.502]], 0.01);
    // zero logits: (thr − 0)/0 is ±Inf or NaN — NaN compares false, so a tied zero stays unmasked
    check([[0, 0, -1, -2]], 0.01);
  });

  it('matches the float64 reference on many random rows for several eps', () => {
    for (const eps of [0, 0.01, 0.05, 0.3]) {
      check(rows(64, 8, 2, 7 + Math.round(eps * 100)), eps);
      check(rows(64, 16, 0.2, 11 + Math.round(eps * 100)), eps);
    }
  });

  it('gates are not renormalised (each is its own masked softmax)', () => {
    const r = new SparseMixerRouter(3, 2, 0.5).route(Float32Array.from([1.0, 0.9, 0.8]), 1);
    const s = r.gates[0]! + r.gates[1]!;
    assert.ok(Math.abs(s - 1) > 1e-3, `sum ${s}`);
    check([[1.0, 0.9, 0.8]], 0.5);
  });

  it('rejects top-k other than 2', () => {
    assert.throws(() => new SparseMixerRouter(8, 3, 0.01), /top-2/);
  });
});
