/** Causal attention (GQA, sliding window, sinks, dq ≠ dv, several sequences) against float64 central differences. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as ag from '../../../src/train/autograd/index.js';
import type { AttentionShape } from '../../../src/train/autograd/index.js';
import { gradcheck, inp, rng, uniform } from './gradcheck.js';

interface Case { name: string; s: AttentionShape; sinks?: boolean; seed: number }

const cases: Case[] = [
  { name: 'MHA, two sequences', s: { B: 2, S: 5, H: 2, KVH: 2, dq: 4, dv: 4, scale: 0.5 }, seed: 1 },
  { name: 'GQA (H=4, KVH=2)', s: { B: 2, S: 4, H: 4, KVH: 2, dq: 3, dv: 3, scale: 1 / Math.sqrt(3) }, seed: 2 },
  { name: 'MQA (KVH=1), dq ≠ dv', s: { B: 1, S: 6, H: 3, KVH: 1, dq: 4, dv: 2, scale: 0.5 }, seed: 3 },
  { name: 'sliding window 3', s: { B: 2, S: 6, H: 2, KVH: 1, dq: 3, dv: 5, scale: 0.6, window: 3 }, seed: 4 },
  { name: 'window 1 (each query sees only itself)', s: { B: 1, S: 4, H: 2, KVH: 2, dq: 2, dv: 3, scale: 0.7, window: 1 }, seed: 5 },
  { name: 'window ≥ S equals full causal', s: { B: 1, S: 4, H: 2, KVH: 2, dq: 2, dv: 3, scale: 0.7, window: 10 }, seed: 6 },
  { name: 'sinks', s: { B: 2, S: 5, H: 2, KVH: 2, dq: 3, dv: 3, scale: 0.6 }, sinks: true, seed: 7 },
  { name: 'sinks + GQA + window + dq ≠ dv', s: { B: 2, S: 6, H: 4, KVH: 2, dq: 4, dv: 3, scale: 0.5, window: 3 }, sinks: true, seed: 8 },
];

function inputs(c: Case): { q: Float64Array; k: Float64Array; v: Float64Array; sinks: Float64Array } {
  const r = rng(c.seed);
  const { B, S, H, KVH, dq, dv } = c.s;
  return {
    q: uniform(B * S * H * dq, r, 1.5),
    k: uniform(B * S * KVH * dq, r, 1.5),
    v: uniform(B * S * KVH * dv, r, 1),
    sinks: uniform(H, r, 1.5),
  };
}

describe('autograd attention: gradients', () => {
  for (const c of cases) {
    it(c.name, () => {
      const { B, S, H, KVH, dq, dv } = c.s;
      const d = inputs(c);
      const xs = [inp(d.q, [B * S, H * dq]), inp(d.k, [B * S, KVH * dq]), inp(d.v, [B * S, KVH * dv])];
      if (c.sinks) xs.push(inp(d.sinks, [H]));
      gradcheck(([q, k, v, sk]) => ag.attention(q!, k!, v!, c.s, sk), xs);
    });
  }
  it('constant k and v (only q and the sinks need a gradient)', () => {
    const c = cases[7]!;
    const { B, S, H, KVH, dq, dv } = c.s;
    const d = inputs(c);
    gradcheck(([q, k, v, sk]) => ag.attention(q!, k!, v!, c.s, sk),
      [inp(d.q, [B * S, H * dq]), inp(d.k, [B * S, KVH * dq], true), inp(d.v, [B * S, KVH * dv], true), inp(d.sinks, [H])]);
  });
  it('constant sinks', () => {
    const c = cases[6]!;
    const { B, S, H, KVH, dq, dv } = c.s;
    const d = inputs(c);
    gradcheck(([q, k, v, sk]) => ag.attention(q!, k!, v!, c.s, sk),
      [inp(d.q, [B * S, H * dq], true), inp(d.k, [B * S, KVH * dq]), inp(d.v, [B * S, KVH * dv]), inp(d.sinks, [H], true)]);
  });
});

describe('autograd attention: forward semantics', () => {
  /** Naive float64 reference with an explicit mask per (query, key) and an explicit sink term. */
  function reference(q: Float64Array, k: Float64Array, v: Float64Array, s: AttentionShape, sinks?: Float64Array): Float64Array {
    const { B, S, H, KVH, dq, dv, scale } = s;
    const out = new Float64Array(B * S * H * dv);
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / (H / KVH));
      for (let i = 0; i < S; i++) {
        const logits: number[] = [];
        for (let j = 0; j < S; j++) {
          const visible = j <= i && (s.window == null || j > i - s.window);
          let dot = 0;
          for (let d = 0; d < dq; d++) dot += q[((b * S + i) * H + h) * dq + d]! * k[((b * S + j) * KVH + kvh) * dq + d]!;
          logits.push(visible ? dot * scale : -Infinity);
        }
        const all = sinks ? [...logits, sinks[h]!] : logits;
        const m = Math.max(...all);
        const z = all.reduce((acc, x) => acc + Math.exp(x - m), 0);
        for (let j = 0; j < S; j++) {
          const p = Math.exp(logits[j]! - m) / z;
          for (let d = 0; d < dv; d++) out[((b * S + i) * H + h) * dv + d]! += p * v[((b * S + j) * KVH + kvh) * dv + d]!;
        }
      }
    }
    return out;
  }
  for (const c of cases) {
    it(`matches a masked reference: ${c.name}`, () => {
      const { B, S, H, KVH, dq, dv } = c.s;
      const d = inputs(c);
      const y = ag.attention(ag.constant(d.q, [B * S, H * dq]), ag.constant(d.k, [B * S, KVH * dq]), ag.constant(d.v, [B * S, KVH * dv]), c.s,
        c.sinks ? ag.constant(d.sinks, [H]) : undefined);
      assert.deepEqual(y.shape, [B * S, H * dv]);
      const ref = reference(d.q, d.k, d.v, c.s, c.sinks ? d.sinks : undefined);
      for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(y.data[i]! - ref[i]!) < 1e-13, `${i}: ${y.data[i]} vs ${ref[i]}`);
    });
  }
  it('sequences do not see each other', () => {
    const s: AttentionShape = { B: 2, S: 3, H: 1, KVH: 1, dq: 2, dv: 2, scale: 1 };
    const r = rng(9);
    const q = uniform(12, r), k = uniform(12, r), v = uniform(12, r);
    const y1 = ag.attention(ag.constant(q, [6, 2]), ag.constant(k, [6, 2]), ag.constant(v, [6, 2]), s);
    const k2 = Float64Array.from(k); const v2 = Float64Array.from(v);
    for (let i = 0; i < 6; i++) { k2[i] = 9; v2[i] = -9; } // change sequence 0's keys and values
    const y2 = ag.attention(ag.constant(q, [6, 2]), ag.constant(k2, [6, 2]), ag.constant(v2, [6, 2]), s);
    assert.deepEqual([...y1.data.subarray(6)], [...y2.data.subarray(6)]);
  });
  it('rejects bad shapes', () => {
    const z = (n: number, w: number): ag.Var => ag.constant(new Float64Array(n * w), [n, w]);
    assert.throws(() => ag.attention(z(4, 6), z(4, 4), z(4, 4), { B: 1, S: 4, H: 3, KVH: 2, dq: 2, dv: 2, scale: 1 }));
    assert.throws(() => ag.attention(z(4, 4), z(4, 4), z(4, 4), { B: 1, S: 3, H: 2, KVH: 2, dq: 2, dv: 2, scale: 1 }));
  });
});
