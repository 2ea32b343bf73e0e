/**
 * The balancing pieces (src/moe/balance/): Switch load-balancing loss, router z-loss, auxiliary-loss-free bias
 * update, capacity with token dropping, soft orthogonality — values on hand-made inputs, float64 references, and
 * finite-difference gradients through the autograd checker.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { constant, param } from '../../../src/train/autograd/var.js';
import { softmax } from '../../../src/train/autograd/ops/softmax.js';
import { switchLoadBalancingLoss, loadFractions } from '../../../src/moe/balance/switch-loss.js';
import { routerZLoss } from '../../../src/moe/balance/z-loss.js';
import { auxFreeBiasUpdate, expertLoad } from '../../../src/moe/balance/aux-free-bias.js';
import { applyCapacity, expertCapacity } from '../../../src/moe/balance/capacity.js';
import { softOrthogonalityLoss } from '../../../src/moe/balance/orthogonality.js';
import { loadBalancingLoss } from '../../../src/moe/balance/load-balancing-loss.js';
import { segmentNormalize } from '../../../src/moe/routers/zoo-ops.js';
import { gradcheck, inp, uniform } from '../../train/autograd/gradcheck.js';
import { argTopK, close, rng, softmaxRow } from './helpers.js';

const r = rng(11);

describe('Switch load-balancing loss', () => {
  it('hand example: E · Σ f·P with f over slots', () => {
    const probs = constant(Float64Array.of(0.7, 0.2, 0.1, 0.1, 0.6, 0.3), [2, 3]);
    // top-1 slots: token 0 → 0, token 1 → 1: f = [½, ½, 0], P = [0.4, 0.4, 0.2] → 3 · (0.2 + 0.2) = 1.2
    close(switchLoadBalancingLoss(probs, Int32Array.of(0, 1)).data[0]!, 1.2, 1e-15, 'loss');
    // per-expert weights η = [1, 0.5, 1] → 3 · (0.2 + 0.1) = 0.9
    close(switchLoadBalancingLoss(probs, Int32Array.of(0, 1), [1, 0.5, 1]).data[0]!, 0.9, 1e-15, 'weighted');
  });
  it('is 1 at uniform load and probability, for any k', () => {
    const E = 4;
    const probs = constant(new Float64Array(8 * E).fill(1 / E), [8, E]);
    for (const k of [1, 2, 4]) {
      const experts = Int32Array.from({ length: 8 * k }, (_, i) => i % E);
      close(switchLoadBalancingLoss(probs, experts).data[0]!, 1, 1e-14, `k=${k}`);
    }
  });
  it('× k equals transformers\' per-token form (load-balancing-loss.ts) for softmax top-k', () => {
    const T = 13, E = 6;
    for (const k of [1, 2, 3]) {
      const logits = Float32Array.from(uniform(T * E, r, 2));
      const experts: number[] = [];
      for (let t = 0; t < T; t++) experts.push(...argTopK(softmaxRow(logits.subarray(t * E, t * E + E)), k));
      const mine = switchLoadBalancingLoss(softmax(constant(Float64Array.from(logits), [T, E])), Int32Array.from(experts)).data[0]!;
      close(mine * k, loadBalancingLoss([logits], E, k), 1e-5, `k=${k}`);
    }
  });
  it('load fractions sum to 1', () => {
    const f = loadFractions(Int32Array.of(0, 0, 2, 1, 2, 2), 4);
    assert.deepEqual(Array.from(f), [2 / 6, 1 / 6, 3 / 6, 0]);
  });
  it('gradient (w.r.t. the logits through softmax) matches finite differences', () => {
    const experts = Int32Array.of(0, 3, 1, 1, 4, 0, 2, 2);
    gradcheck(([x]) => switchLoadBalancingLoss(softmax(x!), experts, [1, 1, 0.5, 1, 2]), [inp(uniform(20, r, 2), [4, 5])]);
  });
});

describe('router z-loss', () => {
  it('hand example: mean of logsumexp²', () => {
    const z = routerZLoss(constant(Float64Array.of(0, 0, Math.log(3), 0), [2, 2])).data[0]!;
    close(z, (Math.LN2 ** 2 + Math.log(4) ** 2) / 2, 1e-15, 'z');
  });
  it('gradient matches finite differences', () => {
    gradcheck(([x]) => routerZLoss(x!), [inp(uniform(18, r, 3), [3, 6])]);
  });
});

describe('auxiliary-loss-free bias', () => {
  it('b += u · sign(mean load − load)', () => {
    const b = Float64Array.of(0, 0.5, 0, 0);
    auxFreeBiasUpdate(b, [10, 0, 5, 5], 0.1);
    assert.deepEqual(Array.from(b), [-0.1, 0.6, 0, 0]);
  });
  it('load counts FFN ids only', () => {
    assert.deepEqual(Array.from(expertLoad([{ experts: Int32Array.of(0, 1, 1, 5) }, { experts: Int32Array.of(1, 2) }], 3)), [1, 3, 1]);
  });
  it('toy: repeated updates on skewed scores bring max/mean load toward 1', () => {
    // 512 tokens, 8 experts, sigmoid scores with expert e shifted by +0.35·e: top-2 of score + bias.
    const T = 512, E = 8, k = 2;
    const s = Float64Array.from({ length: T * E }, (_, i) => 1 / (1 + Math.exp(-((r() * 2 - 1) + 0.35 * (i % E)))));
    const b = new Float64Array(E);
    const route = (): Float64Array => {
      const load = new Float64Array(E);
      for (let t = 0; t < T; t++) {
        for (const e of argTopK(Array.from(s.subarray(t * E, t * E + E), (v, e) => v + b[e]!), k)) load[e]!++;
      }
      return load;
    };
    const ratio = (l: Float64Array): number => Math.max(...l) / ((T * k) / E);
    const first = ratio(route());
    let last = first;
    for (let step = 0; step < 300; step++) {
      const load = route();
      last = ratio(load);
      auxFreeBiasUpdate(b, load, 2e-3);
    }
    assert.ok(first > 2.5, `initial max/mean ${first}`);
    assert.ok(last < 1.25, `after 300 updates max/mean ${last}`);
    assert.ok(b[0]! > b[E - 1]!, 'the unpopular expert got the larger bias');
  });
});

describe('capacity', () => {
  it('C = ⌈cf · T · k / E⌉', () => {
    assert.equal(expertCapacity(10, 2, 4, 1), 5);
    assert.equal(expertCapacity(10, 2, 4, 1.25), 7);
    assert.equal(expertCapacity(3, 1, 8, 1), 1);
    assert.throws(() => expertCapacity(3, 1, 8, 0), /capacity factor/);
  });
  // 4 tokens, top-2 of 3 experts, C = 2. (token: first choice, second choice; scores)
  const slots = {
    tokens: Int32Array.of(0, 0, 1, 1, 2, 2, 3, 3),
    experts: Int32Array.of(0, 1, 0, 2, 1, 0, 0, 1),
    ranks: Int32Array.of(0, 1, 0, 1, 0, 1, 0, 1),
    scores: [0.6, 0.3, 0.5, 0.4, 0.7, 0.2, 0.9, 0.05],
  };
  const keptPairs = (kept: Int32Array): string[] => Array.from(kept, (i) => `${slots.tokens[i]}:${slots.experts[i]}`);
  it("'position': all first choices before second choices, earlier tokens first", () => {
    // rank 0: t0→0, t1→0 (expert 0 full), t2→1, t3→0 dropped; rank 1: t0→1 (expert 1 full), t1→2, t2→0 and t3→1 dropped
    assert.deepEqual(keptPairs(applyCapacity(slots, 3, 2, 'position')), ['0:0', '0:1', '1:0', '1:2', '2:1']);
  });
  it("'score': highest router score first", () => {
    // .9 t3→0, .7 t2→1, .6 t0→0 (expert 0 full), .5 t1→0 dropped, .4 t1→2, .3 t0→1 (expert 1 full), rest dropped
    assert.deepEqual(keptPairs(applyCapacity(slots, 3, 2, 'score')), ['0:0', '0:1', '1:2', '2:1', '3:0']);
  });
  it('zero-computation ids are never dropped; no expert exceeds C', () => {
    const s = { tokens: Int32Array.of(0, 1, 2, 3), experts: Int32Array.of(3, 3, 3, 0), ranks: new Int32Array(4), scores: [1, 1, 1, 1] };
    assert.equal(applyCapacity(s, 3, 1).length, 4);
    const T = 40, E = 5;
    const big = { tokens: Int32Array.from({ length: T }, (_, i) => i), experts: Int32Array.from({ length: T }, () => Math.floor(r() * E)), ranks: new Int32Array(T), scores: Array.from({ length: T }, () => r()) };
    for (const p of ['position', 'score'] as const) {
      const kept = applyCapacity(big, E, 3, p);
      const c = new Array<number>(E).fill(0);
      for (const i of kept) c[big.experts[i]!]!++;
      assert.ok(c.every((v) => v <= 3));
    }
  });
});

describe('soft orthogonality', () => {
  it('hand example: rows [1,0] and [1,1] → 2 · cos² = 1', () => {
    // (1e-10: the row norms carry an ε = 1e-12 under the square root)
    close(softOrthogonalityLoss(constant(Float64Array.of(1, 0, 1, 1), [2, 2])).data[0]!, 1, 1e-10, 'loss');
  });
  it('is 0 for orthogonal rows of any length', () => {
    assert.ok(softOrthogonalityLoss(constant(Float64Array.of(3, 0, 0, 0, -0.5, 0, 0, 0, 2), [3, 3])).data[0]! < 1e-20);
  });
  it('equals Σ_{i≠j} cos² on random rows, and its gradient matches finite differences', () => {
    const W = uniform(24, r, 1);
    const R = 4, C = 6;
    let ref = 0;
    for (let i = 0; i < R; i++) for (let j = 0; j < R; j++) {
      if (i === j) continue;
      let d = 0, a = 0, b = 0;
      for (let c = 0; c < C; c++) { d += W[i * C + c]! * W[j * C + c]!; a += W[i * C + c]! ** 2; b += W[j * C + c]! ** 2; }
      ref += (d * d) / (a * b);
    }
    close(softOrthogonalityLoss(param(Float64Array.from(W), [R, C])).data[0]!, ref, 1e-10, 'loss');
    gradcheck(([w]) => softOrthogonalityLoss(w!), [inp(W, [R, C])]);
  });
});

describe('segmentNormalize (zoo op)', () => {
  it('divides by the segment sum, passes seg −1 through; gradient matches finite differences', () => {
    const seg = Int32Array.of(0, 0, 1, -1, 1, 1, 0);
    const g = Float64Array.of(0.2, 0.5, 0.1, 0.7, 0.3, 0.6, 0.3);
    const y = segmentNormalize(constant(g, [7]), seg, 2).data;
    close(y[0]!, 0.2, 1e-15, 'seg 0');
    close(y[4]!, 0.3, 1e-15, 'seg 1');
    close(y[3]!, 0.7, 1e-15, 'pass-through');
    gradcheck(([x]) => segmentNormalize(x!, seg, 2, 1e-3), [inp(uniform(7, r, 0.4, 0.6), [7])]);
  });
});
