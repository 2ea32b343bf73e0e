/**
 * Shared helpers for the router-zoo tests: float64 router options, random inputs, float64 reference maths, and a
 * finite-difference gradient check over a whole routing (gates + aux losses, through any number of layers).
 *
 * checkGrads(build, vars): build() returns a scalar F (a fixed random projection of the gates plus the aux losses)
 * and a key naming the discrete routing decisions. The analytic gradient is backward(F); the numeric one is the
 * central difference with h = 1e-6·max(1, |v|) (denominator = the difference of the evaluated points, as the
 * autograd checker does). Every probe must keep the same routing key — the routing rules are piecewise constant in
 * their discrete choices, and random inputs keep every score gap ≫ h, so a changed key would mean a tie, not a
 * gradient. Tolerance 1e-6·max(1, |numeric|): in float64 the numeric error here is ≲ 1e-8 (|F| ≲ 10).
 */
import assert from 'node:assert/strict';
import { Var, backward, constant, noGrad, param } from '../../../src/train/autograd/var.js';
import { add, mul, scale } from '../../../src/train/autograd/ops/elementwise.js';
import { sum } from '../../../src/train/autograd/ops/reduce.js';
import type { RouterContext, SlotRouting, TrainableRouterOptions } from '../../../src/moe/routers/trainable.js';
import type { RouterSpec } from '../../../src/moe/routers/router.js';
import { rng } from '../../train/autograd/gradcheck.js';

export { rng };

export function opts(over: Partial<TrainableRouterOptions> = {}, seed = 1): TrainableRouterOptions {
  return { layer: 0, D: 6, numExperts: 8, topK: 2, prefix: 'model.layers.0.mlp', rng: rng(seed), precision: 'f64', ...over };
}

export function ctx(training = true, carry = new Map<string, unknown>()): RouterContext {
  return { layer: 0, carry, training };
}

export function randn(n: number, r: () => number, s = 1): Float64Array {
  return Float64Array.from({ length: n }, () => (r() * 2 - 1) * s);
}

/** x [T, D] as a float64 param (so gradient checks reach it). */
export function xParam(T: number, D: number, seed = 2, s = 1): Var {
  return param(randn(T * D, rng(seed), s), [T, D], 'x');
}

/** Plain float64 helpers for the reference implementations. */
export function matmulNT(x: ArrayLike<number>, w: ArrayLike<number>, T: number, K: number, N: number): Float64Array {
  const y = new Float64Array(T * N);
  for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += x[t * K + k]! * w[n * K + k]!;
    y[t * N + n] = s;
  }
  return y;
}

export function softmaxRow(row: ArrayLike<number>): number[] {
  const a = Array.from(row);
  const m = Math.max(...a);
  const e = a.map((v) => Math.exp(v - m));
  const z = e.reduce((p, q) => p + q, 0);
  return e.map((v) => v / z);
}

export const sigm = (v: number): number => 1 / (1 + Math.exp(-v));

/** Indices of the k largest, descending, ties → lower index. */
export function argTopK(row: readonly number[], k: number, allowed?: (i: number) => boolean): number[] {
  const idx = row.map((_, i) => i).filter((i) => !allowed || allowed(i));
  idx.sort((a, b) => row[b]! - row[a]! || a - b);
  return idx.slice(0, k);
}

/** Slots of a routing as sorted "t:e" strings (order-free comparison). */
export function slotSet(r: { tokens: ArrayLike<number>; experts: ArrayLike<number> }): string[] {
  return Array.from(r.tokens, (t, i) => `${t}:${r.experts[i]}`).sort();
}

/** Gate of slot (t, e) in a routing. */
export function gateOf(r: SlotRouting, t: number, e: number): number {
  for (let i = 0; i < r.tokens.length; i++) if (r.tokens[i] === t && r.experts[i] === e) return r.gates.data[i]!;
  throw new Error(`no slot ${t}:${e}`);
}

export function close(a: number, b: number, tol: number, what = ''): void {
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b} (tol ${tol})`);
}

/** F = Σ_i gates_i · c_i + Σ_j aux_j · d_j with fixed pseudo-random c, d; and the routing key. */
export function project(rs: readonly SlotRouting[], seed = 99): { F: Var; key: string } {
  const r = rng(seed);
  let F: Var | undefined;
  const keys: string[] = [];
  for (const x of rs) {
    keys.push(`${Array.from(x.tokens).join(',')}|${Array.from(x.experts).join(',')}`);
    if (x.gates.size) {
      const c = randn(x.gates.size, r);
      const g = sum(mul(x.gates, constant(c, [x.gates.size])));
      F = F ? add(F, g) : g;
    }
    for (const a of x.aux) {
      const t = scale(a.loss, 0.5 + r());
      F = F ? add(F, t) : t;
    }
  }
  if (!F) throw new Error('nothing to project');
  return { F, key: keys.join('/') };
}

export function checkGrads(build: () => { F: Var; key: string }, vars: readonly Var[], tol = 1e-6): { checked: number; maxErr: number } {
  for (const v of vars) v.zeroGrad();
  const base = build();
  backward(base.F);
  const analytic = vars.map((v) => Float64Array.from(v.grad ?? new Float64Array(v.size)));
  let checked = 0;
  let maxErr = 0;
  vars.forEach((v, vi) => {
    const x = v.data;
    for (let e = 0; e < v.size; e++) {
      const x0 = x[e]!;
      const h = 1e-6 * Math.max(1, Math.abs(x0));
      const xp = x0 + h;
      const xm = x0 - h;
      x[e] = xp;
      const p = noGrad(build);
      x[e] = xm;
      const m = noGrad(build);
      x[e] = x0;
      assert.equal(p.key, base.key, `${v.name || `var ${vi}`}[${e}]: the routing changed under a ±h probe (a tie in the test data)`);
      assert.equal(m.key, base.key, `${v.name || `var ${vi}`}[${e}]: the routing changed under a ±h probe (a tie in the test data)`);
      const numeric = (p.F.data[0]! - m.F.data[0]!) / (xp - xm);
      const err = Math.abs(analytic[vi]![e]! - numeric) / Math.max(1, Math.abs(numeric));
      assert.ok(err <= tol, `${v.name || `var ${vi}`}[${e}]: analytic ${analytic[vi]![e]} vs numeric ${numeric} (err ${err.toExponential(2)})`);
      maxErr = Math.max(maxErr, err);
      checked++;
    }
  });
  for (const v of vars) v.zeroGrad();
  return { checked, maxErr };
}

/** One spec per zoo kind (the ones the inference tests use too). */
export const SPECS: Record<string, RouterSpec> = {
  'balanced-softmax-topk': { kind: 'balanced-softmax-topk', normTopK: true, lbCoef: 0.01, zCoef: 0.001 },
  'aux-free-sigmoid': { kind: 'aux-free-sigmoid', normTopK: true, scaling: 2, nGroup: 2, topkGroup: 1 },
  'group-limited-topk': { kind: 'group-limited-topk', score: 'softmax', nGroup: 4, topkGroup: 2, normTopK: false },
  'expert-choice': { kind: 'expert-choice', capacityFactor: 1 },
  'null-experts': { kind: 'null-experts', numNull: 2, normTopK: true },
  'moe-plus-plus': { kind: 'moe-plus-plus', zero: 1, copy: 1, constant: 1, gatingResidual: true },
  'top-p': { kind: 'top-p', threshold: 0.6, entropyCoef: 1e-4 },
  'relu': { kind: 'relu' },
  'recurrent': { kind: 'recurrent', projDim: 4, normTopK: true },
};

