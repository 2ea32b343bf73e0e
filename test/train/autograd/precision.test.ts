/**
 * float32 vs float64: the gradient of a small transformer-block-shaped composite
 * (linear → per-head rmsNorm → rope → attention with sinks → linear → gatedAct → linear → crossEntropy), computed in
 * float32 (the training path, linear on the CPU backend kernel) and in float64 from the same float32-representable
 * inputs, agrees to max|g32 − g64| ≤ 1e-5 · max|g64| per parameter (and the loss to 1e-6 relative).
 *
 * Why 1e-5: every float32 op rounds with relative error 2^-24 ≈ 6e-8; the chain has ~10 ops forward and backward and
 * its sums run over ≤ 64 terms with no cancellation to speak of, so errors of a few 1e-7 relative to the largest
 * gradient entry are expected (measured: 0.7e-7..2.6e-7 per parameter, loss 1.3e-8). 1e-5 leaves a ~40× margin
 * (other linear kernels, e.g. WASM SIMD, sum in a different order) while a float32-only bug (a wrong kernel call,
 * transposed operand, lost accumulation, a float32 rounding of a probability that should not be rounded) shows up as
 * errors of order 1e-3..1.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as ag from '../../../src/train/autograd/index.js';
import { ropeTable } from '../../../src/nn/rope.js';
import { rng } from './gradcheck.js';

const B = 2, S = 8, Dm = 16, H = 4, KVH = 2, dq = 8, dv = 6, F = 24, V = 11;
const T = B * S;

type Shapes = Record<string, number[]>;
const shapes: Shapes = {
  x: [T, Dm], wq: [H * dq, Dm], wk: [KVH * dq, Dm], wv: [KVH * dv, Dm], qn: [dq], kn: [dq], sinks: [H],
  wg: [F, H * dv], wu: [F, H * dv], wo: [V, F],
};

function model(p: Record<string, ag.Var>, targets: Int32Array): ag.Var {
  const table = ropeTable({ type: 'default', theta: 10000, dim: dq, interleaved: false }, 4096);
  const positions = Array.from({ length: T }, (_, t) => t % S);
  const q = ag.rope(ag.rmsNorm(ag.linear(p['x']!, p['wq']!), p['qn']!, 1e-6), table, H, dq, positions);
  const k = ag.rope(ag.rmsNorm(ag.linear(p['x']!, p['wk']!), p['kn']!, 1e-6), table, KVH, dq, positions);
  const v = ag.linear(p['x']!, p['wv']!);
  const o = ag.attention(q, k, v, { B, S, H, KVH, dq, dv, scale: 1 / Math.sqrt(dq), window: 5 }, p['sinks']);
  const a = ag.gatedAct('silu', ag.linear(o, p['wg']!), ag.linear(o, p['wu']!));
  return ag.crossEntropy(ag.linear(a, p['wo']!), targets);
}

describe('autograd float32 vs float64 gradients', () => {
  it('composite linear → rmsNorm → rope → attention → gatedAct → crossEntropy', () => {
    const r = rng(50);
    const values: Record<string, Float32Array> = {};
    for (const [name, shape] of Object.entries(shapes)) {
      const n = shape.reduce((a, b) => a * b, 1);
      const scale = name === 'x' ? 1 : name === 'qn' || name === 'kn' ? 0.2 : name === 'sinks' ? 1 : 1 / Math.sqrt(shape[1]!);
      const shift = name === 'qn' || name === 'kn' ? 1 : 0;
      values[name] = Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale * 1.5 + shift);
    }
    const targets = Int32Array.from({ length: T }, (_, t) => (t % 5 === 3 ? -1 : Math.floor(r() * V)));
    const run = (f64: boolean): { loss: number; grads: Record<string, Float64Array> } => {
      const p: Record<string, ag.Var> = {};
      for (const [name, shape] of Object.entries(shapes)) {
        p[name] = ag.param(f64 ? Float64Array.from(values[name]!) : Float32Array.from(values[name]!), shape, name);
      }
      const loss = model(p, targets);
      assert.equal(loss.isF64, f64);
      ag.backward(loss);
      const grads: Record<string, Float64Array> = {};
      for (const name of Object.keys(shapes)) {
        assert.equal(p[name]!.grad instanceof Float64Array, f64, `${name}: gradient precision`);
        grads[name] = Float64Array.from(p[name]!.grad!);
      }
      return { loss: loss.data[0]!, grads };
    };
    const g32 = run(false);
    const g64 = run(true);
    assert.ok(Math.abs(g32.loss - g64.loss) <= 1e-6 * Math.abs(g64.loss), `loss ${g32.loss} vs ${g64.loss}`);
    for (const name of Object.keys(shapes)) {
      const a = g32.grads[name]!;
      const b = g64.grads[name]!;
      let maxRef = 0, maxDiff = 0;
      for (let i = 0; i < b.length; i++) { maxRef = Math.max(maxRef, Math.abs(b[i]!)); maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!)); }
      assert.ok(maxRef > 0, `${name}: the gradient is exercised`);
      assert.ok(maxDiff <= 1e-5 * maxRef, `${name}: max |g32 − g64| = ${maxDiff.toExponential(2)} vs max |g64| = ${maxRef.toExponential(2)}`);
    }
  });
});
