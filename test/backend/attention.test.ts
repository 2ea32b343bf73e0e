/**
 * The CPU attention kernel against a float64 naive reference that builds an explicit mask per (query, key) —
 * causal, optionally the transformers sliding window (key j visible from query position p iff j ≤ p and
 * j > p − window) — and an optional per-head sink logit that joins the softmax but carries no value.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { attention, type AttentionOpts } from '../../src/backend/cpu/attention.js';

function rnd(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}
const randArr = (n: number, r: () => number, scale = 1): Float32Array => Float32Array.from({ length: n }, () => r() * scale);

/** Naive float64 reference with an explicit boolean mask and explicit KV-head mapping (h → floor(h / (H/KVH))). */
function reference(
  q: Float32Array, Tq: number, H: number, dq: number, k: Float32Array, v: Float32Array, Tk: number, KVH: number, dv: number,
  start: number, opts: AttentionOpts,
): Float64Array {
  const out = new Float64Array(Tq * H * dv);
  const mask = (i: number, j: number): boolean => {
    const p = start + i;
    if (j > p) return false;
    if (opts.window != null && !(j > p - opts.window)) return false;
    return true;
  };
  for (let i = 0; i < Tq; i++) {
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / (H / KVH));
      const logits: number[] = [];
      for (let j = 0; j < Tk; j++) {
        let s = 0;
        for (let d = 0; d < dq; d++) s += q[(i * H + h) * dq + d]! * k[(j * KVH + kvh) * dq + d]!;
        logits.push(mask(i, j) ? s * opts.scale : -Infinity);
      }
      const all = opts.sinks ? [...logits, opts.sinks[h]!] : logits;
      const m = Math.max(...all);
      const e = all.map((x) => Math.exp(x - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let j = 0; j < Tk; j++) {
        const p = e[j]! / z;
        for (let d = 0; d < dv; d++) out[(i * H + h) * dv + d]! += p * v[(j * KVH + kvh) * dv + d]!;
      }
    }
  }
  return out;
}

interface Case { Tq: number; H: number; KVH: number; dq: number; dv: number; start: number; window?: number | null; sinks?: boolean; seed: number }

function run(c: Case): void {
  const r = rnd(c.seed);
  const Tk = c.start + c.Tq;
  const q = randArr(c.Tq * c.H * c.dq, r, 1.5);
  const k = randArr(Tk * c.KVH * c.dq, r, 1.5);
  const v = randArr(Tk * c.KVH * c.dv, r);
  const opts: AttentionOpts = { scale: 1 / Math.sqrt(c.dq), window: c.window ?? null, sinks: c.sinks ? randArr(c.H, r, 2) : undefined };
  const got = attention(q, c.Tq, c.H, c.dq, k, v, Tk, c.KVH, c.dv, c.start, opts);
  assert.equal(got.length, c.Tq * c.H * c.dv);
  const want = reference(q, c.Tq, c.H, c.dq, k, v, Tk, c.KVH, c.dv, c.start, opts);
  let max = 0;
  for (let i = 0; i < want.length; i++) max = Math.max(max, Math.abs(got[i]! - want[i]!));
  assert.ok(max < 1e-5, `${JSON.stringify(c)}: max |diff| ${max}`);
}

describe('attention kernel', () => {
  it('plain causal MHA', () => run({ Tq: 7, H: 3, KVH: 3, dq: 8, dv: 8, start: 0, seed: 1 }));
  it('GQA grouping (H=6, KVH=2) and MQA (KVH=1)', () => {
    run({ Tq: 6, H: 6, KVH: 2, dq: 8, dv: 8, start: 0, seed: 2 });
    run({ Tq: 6, H: 4, KVH: 1, dq: 8, dv: 8, start: 0, seed: 3 });
  });
  it('dq ≠ dv (MLA-style)', () => run({ Tq: 5, H: 4, KVH: 2, dq: 12, dv: 5, start: 0, seed: 4 }));
  it('sliding window', () => {
    for (const window of [1, 2, 4, 9]) run({ Tq: 9, H: 4, KVH: 2, dq: 8, dv: 8, start: 0, window, seed: 5 + window });
  });
  it('sinks', () => run({ Tq: 8, H: 4, KVH: 2, dq: 8, dv: 6, start: 0, sinks: true, seed: 20 }));
  it('sinks + window + GQA + dq ≠ dv', () => run({ Tq: 10, H: 6, KVH: 3, dq: 10, dv: 4, start: 0, window: 3, sinks: true, seed: 21 }));
  it('start > 0 (continuing a KV cache): chunk and single-token decode', () => {
    run({ Tq: 3, H: 4, KVH: 2, dq: 8, dv: 8, start: 5, seed: 30 });
    run({ Tq: 1, H: 4, KVH: 2, dq: 8, dv: 8, start: 11, window: 4, sinks: true, seed: 31 });
    run({ Tq: 4, H: 6, KVH: 2, dq: 8, dv: 3, start: 7, window: 5, sinks: true, seed: 32 });
  });

  it('window semantics: query at position p sees exactly keys p−window+1 … p', () => {
    // q = 0 makes every visible logit 0; v = one-hot of the key position; a sink s adds exp(s) to the denominator.
    const Tk = 12, window = 4, H = 2, dq = 4, dv = Tk;
    const q = new Float32Array(H * dq);
    const k = new Float32Array(Tk * dq);
    const v = new Float32Array(Tk * dv);
    for (let j = 0; j < Tk; j++) v[j * dv + j] = 1;
    const sinks = Float32Array.from([0, Math.log(4)]);
    const out = attention(q, 1, H, dq, k, v, Tk, 1, dv, Tk - 1, { scale: 1, window, sinks });
    for (let h = 0; h < H; h++) {
      const z = window + Math.exp(sinks[h]!);
      for (let j = 0; j < Tk; j++) {
        const want = j >= Tk - window ? 1 / z : 0;
        assert.ok(Math.abs(out[h * dv + j]! - want) < 1e-7, `head ${h} key ${j}: ${out[h * dv + j]} vs ${want}`);
      }
    }
  });

  it('prefill in one call equals the same tokens fed one by one with start = position', () => {
    const r = rnd(40);
    const T = 9, H = 4, KVH = 2, dq = 8, dv = 6;
    const q = randArr(T * H * dq, r), k = randArr(T * KVH * dq, r), v = randArr(T * KVH * dv, r);
    const opts = { scale: 0.3, window: 3, sinks: randArr(H, r) };
    const all = attention(q, T, H, dq, k, v, T, KVH, dv, 0, opts);
    for (let t = 0; t < T; t++) {
      const one = attention(q.subarray(t * H * dq, (t + 1) * H * dq), 1, H, dq, k, v, t + 1, KVH, dv, t, opts);
      for (let i = 0; i < H * dv; i++) assert.ok(Math.abs(one[i]! - all[t * H * dv + i]!) < 1e-6);
    }
  });
});
