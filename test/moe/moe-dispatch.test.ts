/**
 * Dispatch + grouped experts against a naive float64 reference that runs every chosen expert token by token,
 * and the two simple routers against float64 re-implementations.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dispatch } from '../../src/moe/dispatch.js';
import { runExperts, type ExpertWeights } from '../../src/moe/experts.js';
import { SoftmaxTopKRouter } from '../../src/moe/routers/softmax-topk.js';
import { TopKSoftmaxRouter } from '../../src/moe/routers/topk-softmax.js';
import { loadBalancingLoss } from '../../src/moe/balance/load-balancing-loss.js';
import { makeRng } from '../../src/infer/sampling.js';
import type { Weight } from '../../src/tensor/weight.js';
import type { Routing } from '../../src/moe/routers/router.js';

const rng = makeRng(7);
const randn = (n: number, s = 1): Float32Array => Float32Array.from({ length: n }, () => (rng() * 2 - 1) * s);
const w = (name: string, shape: number[]): Weight => ({ name, dtype: 'f32', shape, data: randn(shape[0]! * shape[1]!, 1 / Math.sqrt(shape[1]!)) });

function refSoftmax(row: number[]): number[] {
  const m = Math.max(...row);
  const e = row.map((v) => Math.exp(v - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
}

describe('dispatch', () => {
  it('groups slots by expert, stable in token order, counts and offsets consistent', () => {
    const T = 37, k = 3, E = 9;
    const experts = new Int32Array(T * k);
    for (let t = 0; t < T; t++) {
      const pick = new Set<number>();
      while (pick.size < k) pick.add(Math.floor(rng() * E));
      [...pick].forEach((e, j) => (experts[t * k + j] = e));
    }
    const r: Routing = { T, k, E, logits: new Float32Array(T * E), scores: new Float32Array(T * E), experts, gates: new Float32Array(T * k) };
    const d = dispatch(r);
    assert.equal(d.offsets[E], T * k);
    const seen = new Set<number>();
    for (let e = 0; e < E; e++) {
      let prev = -1;
      for (let i = d.offsets[e]!; i < d.offsets[e + 1]!; i++) {
        const s = d.order[i]!;
        assert.equal(experts[s], e);
        assert.ok(s > prev, 'stable');
        prev = s;
        seen.add(s);
      }
      assert.equal(d.offsets[e + 1]! - d.offsets[e]!, d.counts[e]);
    }
    assert.equal(seen.size, T * k);
  });
  it('rejects an expert id out of range', () => {
    const r: Routing = { T: 1, k: 1, E: 2, logits: new Float32Array(2), scores: new Float32Array(2), experts: Int32Array.of(2), gates: Float32Array.of(1) };
    assert.throws(() => dispatch(r), /expert 2 of 2/);
  });
});

describe('grouped experts', () => {
  it('equal a per-token float64 loop over the chosen experts (1e-5: float32 sums over D, F ≤ 48)', () => {
    const T = 19, D = 24, F = 40, E = 6, k = 2;
    const experts: ExpertWeights[] = Array.from({ length: E }, (_, e) => ({ gate: w(`g${e}`, [F, D]), up: w(`u${e}`, [F, D]), down: w(`d${e}`, [D, F]) }));
    const x = randn(T * D);
    const router = new SoftmaxTopKRouter(E, k, true);
    const routing = router.route(randn(T * E, 2), T);
    const out = new Float32Array(T * D);
    runExperts(x, D, routing, dispatch(routing), (e) => experts[e]!, { act: 'silu' }, out);
    for (let t = 0; t < T; t++) {
      const ref = new Float64Array(D);
      for (let j = 0; j < k; j++) {
        const ew = experts[routing.experts[t * k + j]!]!;
        const h = new Float64Array(F);
        for (let f = 0; f < F; f++) {
          let g = 0, u = 0;
          for (let c = 0; c < D; c++) { g += x[t * D + c]! * ew.gate.data[f * D + c]!; u += x[t * D + c]! * ew.up.data[f * D + c]!; }
          h[f] = (g / (1 + Math.exp(-g))) * u;
        }
        for (let c = 0; c < D; c++) {
          let y = 0;
          for (let f = 0; f < F; f++) y += h[f]! * ew.down.data[c * F + f]!;
          ref[c]! += routing.gates[t * k + j]! * y;
        }
      }
      for (let c = 0; c < D; c++) assert.ok(Math.abs(out[t * D + c]! - ref[c]!) < 1e-5, `t ${t} c ${c}: ${out[t * D + c]} vs ${ref[c]}`);
    }
  });
});

describe('simple routers', () => {
  const T = 11, E = 8, k = 3;
  const logits = randn(T * E, 3);
  it('softmax-topk with and without renormalisation', () => {
    for (const norm of [true, false]) {
      const r = new SoftmaxTopKRouter(E, k, norm).route(logits, T);
      for (let t = 0; t < T; t++) {
        const p = refSoftmax(Array.from(logits.subarray(t * E, t * E + E)));
        const order = p.map((_, i) => i).sort((a, b) => p[b]! - p[a]!).slice(0, k);
        const z = order.reduce((a, i) => a + p[i]!, 0);
        assert.deepEqual(Array.from(r.experts.subarray(t * k, t * k + k)), order);
        order.forEach((e, j) => assert.ok(Math.abs(r.gates[t * k + j]! - (norm ? p[e]! / z : p[e]!)) < 1e-6));
      }
    }
  });
  it('topk-softmax: softmax over the chosen logits only', () => {
    const r = new TopKSoftmaxRouter(E, k).route(logits, T);
    for (let t = 0; t < T; t++) {
      const row = Array.from(logits.subarray(t * E, t * E + E));
      const order = row.map((_, i) => i).sort((a, b) => row[b]! - row[a]!).slice(0, k);
      const g = refSoftmax(order.map((i) => row[i]!));
      assert.deepEqual(Array.from(r.experts.subarray(t * k, t * k + k)), order);
      g.forEach((v, j) => assert.ok(Math.abs(r.gates[t * k + j]! - v) < 1e-6));
    }
  });
});

describe('load-balancing loss', () => {
  it('is k for perfectly uniform load and probabilities', () => {
    // E = 4, k = 1: token t strongly prefers expert t mod 4 → f uniform; P ≈ uniform by symmetry.
    const E = 4, T = 8;
    const logits = new Float32Array(T * E);
    for (let t = 0; t < T; t++) logits[t * E + (t % E)] = 1;
    assert.ok(Math.abs(loadBalancingLoss([logits], E, 1) - 1) < 1e-6);
  });
  it('matches the formula by hand for a collapsed router', () => {
    // Every token picks expert 0 with p0 = e/(e+3) (logit 1 vs 0): loss = E · 1 · p0.
    const E = 4, T = 5;
    const logits = new Float32Array(T * E);
    for (let t = 0; t < T; t++) logits[t * E] = 1;
    const p0 = Math.E / (Math.E + 3);
    assert.ok(Math.abs(loadBalancingLoss([logits, logits], E, 1) - E * p0) < 1e-6);
  });
});
