/** Routing metrics on small hand-built traces; every expected value is worked out by hand in the comments. */
import { it, describe } from 'node:test';
import assert from 'node:assert/strict';
import { traceFromSlots, validateTrace, tokenSlots } from '../../src/analyze/routing-trace.js';
import { expertLoad, loadImbalance, loadFractions } from '../../src/analyze/metrics/load.js';
import { meanGateEntropy, gateEntropies, loadEntropy, normalisedLoadEntropy } from '../../src/analyze/metrics/entropy.js';
import { tokenSpecialisation } from '../../src/analyze/metrics/specialisation.js';
import { affinityMatrix, traceAffinities } from '../../src/analyze/metrics/affinity.js';
import { segmentRoutingBestPerformance } from '../../src/analyze/metrics/srp.js';
import { segmentCacheHitRate } from '../../src/analyze/metrics/sch.js';
import { routingSimilarity, jsDivergence } from '../../src/analyze/metrics/similarity.js';

const close = (a: number, b: number, eps = 1e-12): void => assert.ok(Math.abs(a - b) <= eps, `${a} ≠ ${b}`);
/** One layer, top-1 routing with gate 1 to the given experts. */
const top1 = (tokens: number[], experts: number[], E: number) => traceFromSlots(tokens, E, [experts.map((e) => [[e, 1]] as const)]);

describe('routing trace', () => {
  it('keeps a variable number of slots per token', () => {
    const tr = traceFromSlots([5, 6, 7], 4, [[[[0, 0.7], [1, 0.3]], [], [[2, 1], [3, 0], [4, 0.5]]]], 5);
    validateTrace(tr);
    assert.deepEqual(tr.layers[0]!.offsets, [0, 2, 2, 5]);
    assert.deepEqual(tokenSlots(tr.layers[0]!, 2), { experts: [2, 3, 4], gates: [1, 0, 0.5] });
    assert.throws(() => validateTrace({ ...tr, tokens: [1] }), /offsets/);
  });
});

describe('load and imbalance', () => {
  it('perfectly balanced load: max/mean 1, CV 0', () => {
    const l = top1([0, 0, 0, 0], [0, 1, 2, 3], 4).layers[0]!;
    assert.deepEqual(expertLoad(l), [1, 1, 1, 1]);
    assert.deepEqual(loadImbalance(l), { maxOverMean: 1, cv: 0 });
  });
  it('everything on one of 4 experts: max/mean 4, CV √3', () => {
    // loads [4,0,0,0]: mean 1, σ² = (9 + 1 + 1 + 1)/4 = 3.
    const l = top1([0, 0, 0, 0], [2, 2, 2, 2], 4).layers[0]!;
    const imb = loadImbalance(l);
    close(imb.maxOverMean, 4);
    close(imb.cv, Math.sqrt(3));
    assert.deepEqual(loadFractions(l), [0, 0, 1, 0]);
  });
  it('loads [3,1]: max/mean 1.5, CV 0.5', () => {
    const imb = loadImbalance(top1([0, 0, 0, 0], [0, 0, 0, 1], 2).layers[0]!);
    close(imb.maxOverMean, 1.5);
    close(imb.cv, 0.5); // mean 2, σ = 1
  });
});

describe('entropy', () => {
  it('one-hot routing: gate entropy 0 and load entropy 0', () => {
    const l = top1([0, 1, 2], [1, 1, 1], 4).layers[0]!;
    assert.equal(meanGateEntropy(l), 0);
    assert.equal(loadEntropy(l), 0);
    assert.equal(normalisedLoadEntropy(l), 0);
  });
  it('two equal gates: 1 bit; gates 0.75/0.25: H = 2 − ¾·log₂3', () => {
    const tr = traceFromSlots([0, 0], 4, [[[[0, 0.5], [1, 0.5]], [[2, 0.75], [3, 0.25]]]]);
    const h = gateEntropies(tr.layers[0]!);
    close(h[0]!, 1);
    close(h[1]!, 2 - 0.75 * Math.log2(3), 1e-12);
    // Load uniform over the 4 experts: 2 bits, normalised 1.
    close(loadEntropy(tr.layers[0]!), 2);
    close(normalisedLoadEntropy(tr.layers[0]!), 1);
  });
});

describe('token-id specialisation', () => {
  it('a deterministic token → expert map: accuracy 1, NMI 1', () => {
    const s = tokenSpecialisation([7, 8, 7, 9, 8, 7], top1([7, 8, 7, 9, 8, 7], [0, 1, 0, 2, 1, 0], 3).layers[0]!);
    assert.equal(s.accuracy, 1);
    close(s.nmi, 1);
    close(s.baseline, 0.5); // expert 0 takes 3 of 6 tokens
  });
  it('expert independent of the token id: NMI 0, accuracy = majority share per id', () => {
    // ids a,a,b,b with experts 0,1,0,1: each id splits evenly → mode hits 1 of 2 per id → accuracy ½;
    // H(X) = 1 bit, H(X|V) = 1 bit → NMI 0.
    const s = tokenSpecialisation([1, 1, 2, 2], top1([1, 1, 2, 2], [0, 1, 0, 1], 2).layers[0]!);
    close(s.accuracy, 0.5);
    close(s.nmi, 0);
  });
  it('top-1 is the slot with the largest gate; one-expert routing has NMI NaN', () => {
    const tr = traceFromSlots([3, 3], 4, [[[[0, 0.2], [1, 0.8]], [[1, 0.6], [0, 0.4]]]]);
    const s = tokenSpecialisation(tr.tokens, tr.layers[0]!);
    assert.equal(s.accuracy, 1);
    assert.ok(Number.isNaN(s.nmi));
  });
});

describe('inter-layer affinity', () => {
  it('rows sum to 1 and follow the counts', () => {
    // Layer 0 experts per token: [0], [0], [1]; layer 1: [2], [3], [2,3].
    // Expert 0 → {2:1, 3:1} → [0, 0, ½, ½]; expert 1 → {2:1, 3:1} → [0, 0, ½, ½]; experts 2, 3 never chosen at layer 0.
    const tr = traceFromSlots([0, 0, 0], 4, [
      [[[0, 1]], [[0, 1]], [[1, 1]]],
      [[[2, 1]], [[3, 1]], [[2, 0.5], [3, 0.5]]],
    ]);
    const A = affinityMatrix(tr.layers[0]!, tr.layers[1]!);
    assert.deepEqual(A, [[0, 0, 0.5, 0.5], [0, 0, 0.5, 0.5], [0, 0, 0, 0], [0, 0, 0, 0]]);
    for (const row of A) { const s = row.reduce((a, b) => a + b, 0); assert.ok(s === 0 || Math.abs(s - 1) < 1e-12); }
    assert.equal(traceAffinities(tr).length, 1);
  });
  it('identity routing across layers gives the identity matrix', () => {
    const tr = traceFromSlots([0, 0, 0], 3, [[[[0, 1]], [[1, 1]], [[2, 1]]], [[[0, 1]], [[1, 1]], [[2, 1]]]]);
    assert.deepEqual(affinityMatrix(tr.layers[0]!, tr.layers[1]!), [[1, 0, 0], [0, 1, 0], [0, 0, 1]]);
  });
});

describe('SRP (segment routing best performance)', () => {
  it('the same experts on every token: SRP 1 for every segment length', () => {
    const tr = traceFromSlots(new Array(8).fill(0), 8, [new Array(8).fill([[3, 0.6], [5, 0.4]])]);
    for (const m of [1, 2, 4, 8]) {
      const r = segmentRoutingBestPerformance(tr.layers[0]!, m);
      assert.equal(r.srp, 1);
      assert.equal(r.threshold, m);
    }
  });
  it('alternating experts 0,1,0,1 with m = 2: best F1 = 2/3', () => {
    // 3 segments, each with c₀ = c₁ = 1 → hist[1] = 6, actual = 6.
    // p = 2: nothing predicted → 0; p = 1 (or 0): matched 6, predicted 2·6 = 12 → 2·6/(12 + 6) = 2/3.
    const r = segmentRoutingBestPerformance(top1([0, 0, 0, 0], [0, 1, 0, 1], 2).layers[0]!, 2);
    close(r.srp, 2 / 3);
    assert.equal(r.threshold, 1);
  });
  it('m = 1 is always 1; zero-computation ids are ignored; T < m is NaN', () => {
    const tr = traceFromSlots([0, 0, 0], 2, [[[[0, 1], [2, 0.5]], [[1, 1]], [[2, 1]]]], 3);
    assert.equal(segmentRoutingBestPerformance(tr.layers[0]!, 1).srp, 1);
    assert.ok(Number.isNaN(segmentRoutingBestPerformance(tr.layers[0]!, 4).srp));
  });
});

describe('SCH (segment cache best hit rate)', () => {
  it('LRU (m = 1) by hand: 0,1,0,1,2,3,2,3 with 2 slots → 6/8', () => {
    // 0, 1 fill free slots (hits); 0, 1 hit; 2 evicts 0, 3 evicts 1 (misses); 2, 3 hit.
    close(segmentCacheHitRate(top1(new Array(8).fill(0), [0, 1, 0, 1, 2, 3, 2, 3], 4).layers[0]!, 1, 2), 6 / 8);
  });
  it('look-ahead helps: 0,1,2,0,0,0 with 2 slots → LRU 4/6, m = 6 keeps expert 0 → 5/6', () => {
    const l = top1(new Array(6).fill(0), [0, 1, 2, 0, 0, 0], 3).layers[0]!;
    close(segmentCacheHitRate(l, 1, 2), 4 / 6);
    close(segmentCacheHitRate(l, 6, 2), 5 / 6);
  });
  it('a cache as large as the expert count always hits', () => {
    const l = top1(new Array(6).fill(0), [0, 1, 2, 0, 2, 1], 3).layers[0]!;
    assert.equal(segmentCacheHitRate(l, 1, 3), 1);
  });
});

describe('routing similarity', () => {
  it('identical texts: similarity 1; disjoint experts: 0', () => {
    const a = top1([1, 2, 3, 4], [0, 1, 1, 2], 4);
    const [s] = routingSimilarity(a, a);
    close(s!.jsSimilarity, 1);
    close(s!.cosine, 1);
    const b = top1([1, 2], [3, 3], 4);
    const [d] = routingSimilarity(top1([1, 2], [0, 0], 4), b);
    close(d!.jsSimilarity, 0);
    close(d!.cosine, 0);
  });
  it('JSD of [1,0] and [½,½] by hand', () => {
    // m = [¾, ¼]; ½·1·log₂(4/3) + ½·(½·log₂(⅔) + ½·log₂2) = ½log₂(4/3) + ¼log₂(2/3) + ¼.
    close(jsDivergence([1, 0], [0.5, 0.5]), 0.5 * Math.log2(4 / 3) + 0.25 * Math.log2(2 / 3) + 0.25, 1e-12);
  });
});
