/**
 * float32 autograd forwards against the inference kernels they mirror, so a trained model runs identically through
 * inference. Every comparison here is bit-identical (the autograd ops evaluate the kernels' expressions in the same
 * order, with the same float32 rounding points).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as ag from '../../../src/train/autograd/index.js';
import { rmsNorm as rmsNormK, layerNorm as layerNormK } from '../../../src/backend/cpu/norm.js';
import { softmaxRows } from '../../../src/backend/cpu/softmax.js';
import { gatedActivation, gelu as geluK, sigmoid as sigmoidK, silu as siluK } from '../../../src/backend/cpu/activations.js';
import { attention as attentionK } from '../../../src/backend/cpu/attention.js';
import { rope as ropeK, ropeTable, type RopeTable } from '../../../src/nn/rope.js';
import { rng } from './gradcheck.js';

function f32(n: number, r: () => number, scale = 1, shift = 0): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale + shift;
  return a;
}

/** Bitwise equality of two float32 arrays (distinguishes −0 from +0 and compares NaN payloads). */
function sameBits(got: ag.FArray, want: Float32Array, what: string): void {
  assert.ok(got instanceof Float32Array, `${what}: float32 output expected`);
  assert.equal(got.length, want.length, `${what}: length`);
  const a = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const b = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) assert.fail(`${what}: element ${i}: ${got[i]} vs ${want[i]}`);
}

const c32 = (data: Float32Array, shape: readonly number[]): ag.Var => ag.constant(Float32Array.from(data), shape);
const r = rng(40);

describe('autograd float32 forward = inference kernels (bit-identical)', () => {
  it('rmsNorm (rows and per-head groups)', () => {
    const x = f32(6 * 32, r, 3);
    for (const G of [32, 8]) {
      const w = f32(G, r, 0.5, 1);
      sameBits(ag.rmsNorm(c32(x, [6, 32]), c32(w, [G]), 1e-6).data, rmsNormK(x, w, 1e-6), `rmsNorm G=${G}`);
    }
  });
  it('layerNorm with and without bias', () => {
    const x = f32(5 * 24, r, 3, 0.7);
    const w = f32(24, r, 0.5, 1);
    const b = f32(24, r, 0.5);
    sameBits(ag.layerNorm(c32(x, [5, 24]), c32(w, [24]), c32(b, [24]), 1e-5).data, layerNormK(x, w, b, 1e-5), 'layerNorm+b');
    sameBits(ag.layerNorm(c32(x, [5, 24]), c32(w, [24]), undefined, 1e-5).data, layerNormK(x, w, undefined, 1e-5), 'layerNorm');
  });
  it('softmax', () => {
    const x = f32(7 * 50, r, 8);
    sameBits(ag.softmax(c32(x, [7, 50])).data, softmaxRows(Float32Array.from(x), 50), 'softmax');
  });
  it('gated activations (silu, gelu, gpt_oss across its clamps) and the unary activations', () => {
    const gate = f32(300, r, 10);
    const up = f32(300, r, 10);
    for (const kind of ['silu', 'gelu', 'gpt_oss'] as const) {
      const want = gatedActivation(kind, Float32Array.from(gate), up, kind === 'gpt_oss' ? { alpha: 1.702, limit: 7 } : undefined);
      sameBits(ag.gatedAct(kind, c32(gate, [300]), c32(up, [300])).data, want, `gatedAct ${kind}`);
    }
    const opts = { alpha: 1.5, limit: 3 };
    sameBits(ag.gatedAct('gpt_oss', c32(gate, [300]), c32(up, [300]), opts).data,
      gatedActivation('gpt_oss', Float32Array.from(gate), up, opts), 'gatedAct gpt_oss (alpha 1.5, limit 3)');
    for (const [op, k] of [[ag.silu, siluK], [ag.gelu, geluK], [ag.sigmoid, sigmoidK]] as const) {
      sameBits(op(c32(gate, [300])).data, Float32Array.from(gate, k), `${op.name}`);
    }
  });
  it('rope: half and interleaved layouts, partial rotary with offset, YaRN scale, longrope switch', () => {
    const T = 6, H = 3, D = 16;
    const x = f32(T * H * D, r, 2);
    const tables: [string, RopeTable, number, number][] = [
      ['default half', ropeTable({ type: 'default', theta: 10000, dim: D, interleaved: false }, 4096), D, 0],
      ['default interleaved', ropeTable({ type: 'default', theta: 10000, dim: D, interleaved: true }, 4096), D, 0],
      ['partial, offset 4', ropeTable({ type: 'default', theta: 500000, dim: 8, interleaved: false }, 4096), 8, 4],
      ['yarn', ropeTable({ type: 'yarn', theta: 150000, dim: D, interleaved: false, factor: 32, originalMaxPositions: 4096, truncate: false }, 131072), D, 0],
      ['longrope', ropeTable({
        type: 'longrope', theta: 10000, dim: D, interleaved: false, factor: 4, originalMaxPositions: 100,
        shortFactor: [1, 1, 1.2, 1.5, 2, 3, 4, 5], longFactor: [1, 2, 3, 4, 6, 8, 12, 16],
      }, 400), D, 0],
    ];
    for (const positions of [[0, 1, 2, 3, 4, 5], [7, 99, 100, 1000, 3000, 60000]]) {
      for (const [name, t, , offset] of tables) {
        const want = Float32Array.from(x);
        ropeK(t, want, T, H, D, positions, offset);
        sameBits(ag.rope(c32(x, [T, H * D]), t, H, D, positions, offset).data, want, `rope ${name} @ ${positions.join(',')}`);
      }
    }
  });
  it('attention per sequence = backend/cpu/attention.ts (GQA, window, sinks, dq ≠ dv)', () => {
    const configs = [
      { B: 3, S: 9, H: 4, KVH: 2, dq: 8, dv: 8, scale: 1 / Math.sqrt(8), window: null, sinks: false },
      { B: 2, S: 12, H: 4, KVH: 1, dq: 6, dv: 4, scale: 0.3, window: 4, sinks: true },
      { B: 2, S: 7, H: 2, KVH: 2, dq: 5, dv: 7, scale: 0.5, window: null, sinks: true },
    ];
    for (const c of configs) {
      const { B, S, H, KVH, dq, dv } = c;
      const q = f32(B * S * H * dq, r, 2);
      const k = f32(B * S * KVH * dq, r, 2);
      const v = f32(B * S * KVH * dv, r);
      const sinks = f32(H, r, 2);
      const y = ag.attention(c32(q, [B * S, H * dq]), c32(k, [B * S, KVH * dq]), c32(v, [B * S, KVH * dv]), c,
        c.sinks ? c32(sinks, [H]) : undefined);
      const want = new Float32Array(B * S * H * dv);
      for (let b = 0; b < B; b++) {
        const seq = (a: Float32Array, w: number): Float32Array => a.subarray(b * S * w, (b + 1) * S * w);
        const o = attentionK(seq(q, H * dq), S, H, dq, seq(k, KVH * dq), seq(v, KVH * dv), S, KVH, dv, 0,
          { scale: c.scale, window: c.window, sinks: c.sinks ? sinks : undefined });
        want.set(o, b * S * H * dv);
      }
      sameBits(y.data, want, `attention ${JSON.stringify(c)}`);
    }
  });
});
