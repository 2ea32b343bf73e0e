/**
 * DeepSeek routers against straightforward float64 re-implementations of transformers v5's routing, written here
 * step by step:
 *   DeepSeek-V2 (`group-limited-greedy`): softmax → [group max → keep topk_group groups → masked_fill 0.0] → top-k →
 *     (renormalise) → × routed_scaling_factor.
 *   DeepSeek-V3 (`sigmoid-group-topk`, noaux_tc): sigmoid → + correction bias → group score = sum of top-2 → keep
 *     topk_group groups → masked_fill 0.0 → top-k → gather the *unbiased* sigmoid → renormalise (+1e-20) → × scaling.
 * Plus hand-made cases where group limiting visibly changes the choice.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GroupLimitedGreedyRouter } from '../../src/moe/routers/group-limited-greedy.js';
import { SigmoidGroupTopKRouter } from '../../src/moe/routers/sigmoid-group-topk.js';
import type { Routing } from '../../src/moe/routers/router.js';

interface RefRow { experts: number[]; gates: number[] }

/** Indices of the k largest values, descending, ties to the lower index. */
function topk(v: number[], k: number): number[] {
  return v.map((x, i) => [x, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, k).map((p) => p[1]);
}

/** Keep the `keep` best groups (by `score`) of consecutive groups; other entries become 0. */
function groupMask(v: number[], nGroup: number, keep: number, score: (g: number[]) => number): number[] {
  const size = v.length / nGroup;
  const groups = Array.from({ length: nGroup }, (_, g) => v.slice(g * size, (g + 1) * size));
  const kept = new Set(topk(groups.map(score), keep));
  return v.map((x, i) => (kept.has(Math.floor(i / size)) ? x : 0));
}

function refV2(logits: number[], k: number, o: { method: 'greedy' | 'group_limited_greedy'; nGroup: number; topkGroup: number; norm: boolean; scaling: number }): RefRow {
  const m = Math.max(...logits);
  const e = logits.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  let p = e.map((x) => x / s);
  if (o.method === 'group_limited_greedy') p = groupMask(p, o.nGroup, o.topkGroup, (g) => Math.max(...g));
  const experts = topk(p, k);
  let gates = experts.map((i) => p[i]!);
  if (o.norm) { const d = gates.reduce((a, b) => a + b, 0) + 1e-20; gates = gates.map((g) => g / d); }
  return { experts, gates: gates.map((g) => g * o.scaling) };
}

function refV3(logits: number[], bias: number[], k: number, o: { nGroup: number; topkGroup: number; norm: boolean; scaling: number }): RefRow {
  const s = logits.map((x) => 1 / (1 + Math.exp(-x)));
  const choice = s.map((x, i) => x + bias[i]!);
  const masked = groupMask(choice, o.nGroup, o.topkGroup, (g) => topk(g, 2).reduce((a, i) => a + g[i]!, 0));
  const experts = topk(masked, k);
  let gates = experts.map((i) => s[i]!);
  if (o.norm) { const d = gates.reduce((a, b) => a + b, 0) + 1e-20; gates = gates.map((g) => g / d); }
  return { experts, gates: gates.map((g) => g * o.scaling) };
}

/** Deterministic pseudo-random numbers in [-3, 3). */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; return (x / 2 ** 32) * 6 - 3; };
}

function assertMatches(r: Routing, logits: number[][], ref: (row: number[]) => RefRow, tol = 2e-6): void {
  const k = r.k;
  logits.forEach((row, t) => {
    const want = ref(row);
    const got = [...r.experts.subarray(t * k, t * k + k)];
    assert.deepEqual([...got].sort((a, b) => a - b), [...want.experts].sort((a, b) => a - b), `token ${t} experts`);
    for (let j = 0; j < k; j++) {
      const wi = want.experts.indexOf(got[j]!);
      assert.ok(Math.abs(r.gates[t * k + j]! - want.gates[wi]!) <= tol, `token ${t} gate of expert ${got[j]}: ${r.gates[t * k + j]} vs ${want.gates[wi]}`);
    }
  });
  assert.equal(r.logits.length, r.T * r.E);
  assert.equal(r.scores.length, r.T * r.E);
}

const flat = (rows: number[][]): Float32Array => Float32Array.from(rows.flat());
/** Logits already rounded to float32, so the float64 reference sees exactly what the router sees. */
const randomLogits = (T: number, E: number, seed: number): number[][] => {
  const r = lcg(seed);
  return Array.from({ length: T }, () => Array.from({ length: E }, () => Math.fround(r())));
};

describe('GroupLimitedGreedyRouter (DeepSeek-V2)', () => {
  it('greedy: softmax top-k × routed_scaling_factor, against float64', () => {
    const E = 16, k = 4, T = 40;
    const logits = randomLogits(T, E, 1);
    const spec = { kind: 'group-limited-greedy' as const, nGroup: 1, topkGroup: 1, method: 'greedy' as const, normTopK: false, scaling: 16 };
    const r = new GroupLimitedGreedyRouter(E, k, spec).route(flat(logits), T);
    assertMatches(r, logits, (row) => refV2(row, k, { method: 'greedy', nGroup: 1, topkGroup: 1, norm: false, scaling: 16 }), 3e-5);
    // scores are the softmax probabilities
    for (let t = 0; t < T; t++) {
      let s = 0;
      for (let e = 0; e < E; e++) s += r.scores[t * E + e]!;
      assert.ok(Math.abs(s - 1) < 1e-5);
    }
  });

  it('group_limited_greedy (with and without renormalisation), against float64', () => {
    const E = 16, k = 3, T = 60;
    const logits = randomLogits(T, E, 7);
    for (const norm of [false, true]) {
      const o = { method: 'group_limited_greedy' as const, nGroup: 4, topkGroup: 2, norm, scaling: 2.5 };
      const spec = { kind: 'group-limited-greedy' as const, nGroup: 4, topkGroup: 2, method: o.method, normTopK: norm, scaling: 2.5 };
      const r = new GroupLimitedGreedyRouter(E, k, spec).route(flat(logits), T);
      assertMatches(r, logits, (row) => refV2(row, k, o));
      if (norm) for (let t = 0; t < T; t++) {
        const s = r.gates[t * k]! + r.gates[t * k + 1]! + r.gates[t * k + 2]!;
        assert.ok(Math.abs(s - 2.5) < 1e-5, `renormalised gates sum to the scaling factor (${s})`);
      }
    }
  });

  it('group limiting drops a group holding the second-best expert (the best one is always kept: group score = max)', () => {
    // 4 groups of 2. Group maxima: g0 = 5, g1 = 4.9 (its 2nd expert is 4.8), g2 = 4.95, g3 = 0. Keep 2 groups: g0, g2.
    // Greedy top-3 would be {0, 2, 3} or so; limited to g0 ∪ g2 it must be {0, 4, 5}/{0, 1, 4}.
    const row = [5, -5, 4.9, 4.8, 4.95, 1, 0, 0];
    const spec = { kind: 'group-limited-greedy' as const, nGroup: 4, topkGroup: 2, method: 'group_limited_greedy' as const, normTopK: false, scaling: 1 };
    const r = new GroupLimitedGreedyRouter(8, 3, spec).route(Float32Array.from(row), 1);
    const got = [...r.experts].sort((a, b) => a - b);
    assert.deepEqual(got, [0, 4, 5]);
    assert.ok(!got.includes(2), 'expert 2 (second best overall) sits in a dropped group');
    const greedy = new GroupLimitedGreedyRouter(8, 3, { ...spec, method: 'greedy' }).route(Float32Array.from(row), 1);
    assert.deepEqual([...greedy.experts].sort((a, b) => a - b), [0, 2, 4]);
    assertMatches(r, [row], (x) => refV2(x, 3, { method: 'group_limited_greedy', nGroup: 4, topkGroup: 2, norm: false, scaling: 1 }));
  });
});

describe('SigmoidGroupTopKRouter (DeepSeek-V3 noaux_tc)', () => {
  it('matches float64 on random logits and correction biases', () => {
    const E = 16, k = 4, T = 60;
    const logits = randomLogits(T, E, 3);
    const rb = lcg(11);
    const bias = Array.from({ length: E }, () => Math.fround(rb() * 0.1));
    for (const norm of [true, false]) {
      const spec = { kind: 'sigmoid-group-topk' as const, nGroup: 4, topkGroup: 2, normTopK: norm, scaling: 2.5, biasName: 'b' };
      const r = new SigmoidGroupTopKRouter(E, k, spec, Float32Array.from(bias)).route(flat(logits), T);
      assertMatches(r, logits, (row) => refV3(row, bias, k, { nGroup: 4, topkGroup: 2, norm, scaling: 2.5 }));
      // scores are the unbiased sigmoid
      assert.ok(Math.abs(r.scores[0]! - 1 / (1 + Math.exp(-logits[0]![0]!))) < 1e-7);
    }
  });

  it('group limiting excludes the group that holds the single best expert', () => {
    // 4 groups of 2, keep 2, k = 2, no bias. Expert 0 has the best score, but its partner is weak, so group 0's top-2
    // sum (≈ 1.0) loses to groups 1 (≈ 1.91) and 2 (≈ 1.85).
    const row = [4, -4, 3, 3, 2.5, 2.5, -1, -1];
    const spec = { kind: 'sigmoid-group-topk' as const, nGroup: 4, topkGroup: 2, normTopK: true, scaling: 1, biasName: 'b' };
    const bias = new Array(8).fill(0) as number[];
    const r = new SigmoidGroupTopKRouter(8, 2, spec, Float32Array.from(bias)).route(Float32Array.from(row), 1);
    assert.deepEqual([...r.experts].sort((a, b) => a - b), [2, 3]);
    assert.ok(!r.experts.includes(0));
    assertMatches(r, [row], (x) => refV3(x, bias, 2, { nGroup: 4, topkGroup: 2, norm: true, scaling: 1 }));
    // Without group limiting (one group) expert 0 would be chosen.
    const one = new SigmoidGroupTopKRouter(8, 2, { ...spec, nGroup: 1, topkGroup: 1 }, Float32Array.from(bias)).route(Float32Array.from(row), 1);
    assert.ok(one.experts.includes(0));
  });

  it('the correction bias changes the choice but not the gate weights', () => {
    const row = [2, 1.9, 0, 0];
    const spec = { kind: 'sigmoid-group-topk' as const, nGroup: 1, topkGroup: 1, normTopK: false, scaling: 1, biasName: 'b' };
    const bias = [0, 0.5, 0, 0];
    const r = new SigmoidGroupTopKRouter(4, 1, spec, Float32Array.from(bias)).route(Float32Array.from(row), 1);
    assert.equal(r.experts[0], 1, 'bias lifts expert 1 above expert 0');
    assert.ok(Math.abs(r.gates[0]! - 1 / (1 + Math.exp(-1.9))) < 1e-7, 'gate is the unbiased sigmoid score');
  });

  it('masked groups are filled with 0.0 as transformers does (a masked expert can beat a negative biased score)', () => {
    // sigmoid(0) = 0.5. Biased: group 0 → (-0.4, -0.4), group 1 → (-0.1, -0.1); group 1 is kept, group 0 masked to
    // 0.0, which is larger than -0.1: transformers' masked_fill(…, 0.0) then picks experts 0 and 1 of the dropped group.
    const row = [0, 0, 0, 0];
    const bias = [-0.9, -0.9, -0.6, -0.6];
    const spec = { kind: 'sigmoid-group-topk' as const, nGroup: 2, topkGroup: 1, normTopK: false, scaling: 1, biasName: 'b' };
    const r = new SigmoidGroupTopKRouter(4, 2, spec, Float32Array.from(bias)).route(Float32Array.from(row), 1);
    assert.deepEqual([...r.experts].sort(), [0, 1]);
    assert.deepEqual([...r.gates], [0.5, 0.5]);
    assertMatches(r, [row], (x) => refV3(x, bias, 2, { nGroup: 2, topkGroup: 1, norm: false, scaling: 1 }));
  });
});
