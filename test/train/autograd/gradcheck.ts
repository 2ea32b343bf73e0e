/**
 * Finite-difference gradient checker for the autograd ops (float64).
 *
 * `gradcheck(f, inputs)` builds a float64 param per input, runs y = f(params) and reduces y to the scalar
 * F = Σ_k y_k·r_k with a fixed random projection r (so every output element's gradient is exercised; r = [1] for a
 * scalar y). The analytic gradient comes from backward(y, r); the numeric one from central differences
 *   ∂F/∂x_e ≈ (F(x + h·e) − F(x − h·e)) / ((x + h) − (x − h)),   h = 1e-6·max(1, |x_e|)
 * (the denominator is the difference of the two representable points actually evaluated, not 2h).
 *
 * Tolerance: |analytic − numeric| ≤ 1e-6·max(1, |numeric|). Central differences have truncation error
 * h²/6·|F'''| ≈ 2e-13·|F'''| and rounding error ≈ ε·|F|/h ≈ 2.2e-16·|F|/1e-6 ≈ 2e-10·|F|; the test inputs keep
 * |F| ≲ 100 and |F'''| ≲ 1e3, so the numeric error is ≲ 1e-7, a 10× margin under the tolerance, while a wrong
 * derivative term is off by far more (typically ≥ 1e-3). Inputs must stay away from kinks (relu/abs at 0, clamp
 * edges) by much more than h. Observed across this suite: max error 5e-9.
 *
 * The checker also verifies the autograd contract on every op it sees: the output is float64 for float64 inputs,
 * the forward does not modify its inputs, backward *accumulates* (each param's grad is pre-filled with random values
 * that must survive as an additive offset), and inputs marked `constant` get no gradient at all.
 */
import assert from 'node:assert/strict';
import { Var, backward, constant, noGrad, param } from '../../../src/train/autograd/index.js';
import { makeRng } from '../../../src/infer/sampling.js';

/** Seeded uniform [0, 1) source for test data (the engine's mulberry32). */
export const rng = makeRng;

/** n uniform values in [−scale, scale) + shift. */
export function uniform(n: number, r: () => number, scale = 1, shift = 0): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale + shift;
  return a;
}

/** Pushes values within `margin` of any of `points` out to that distance (keeps FD probes off kinks). */
export function avoid(a: Float64Array, points: readonly number[], margin: number): Float64Array {
  for (let i = 0; i < a.length; i++) {
    for (const p of points) {
      const d = a[i]! - p;
      if (Math.abs(d) < margin) a[i] = p + (d >= 0 ? margin : -margin);
    }
  }
  return a;
}

export interface Input {
  data: Float64Array;
  shape: readonly number[];
  /** Passed as a constant (no gradient expected, none checked). */
  constant?: boolean;
}

export const inp = (data: Float64Array, shape: readonly number[], isConstant = false): Input => ({ data, shape, constant: isConstant });

export interface GradcheckOpts {
  /** Relative/absolute tolerance (default 1e-6, see the header). */
  tol?: number;
  /** Seed of the output projection and of the pre-filled gradients. */
  seed?: number;
}

export interface GradcheckReport {
  /** max |analytic − numeric| / max(1, |numeric|) over all checked elements. */
  maxErr: number;
  checked: number;
}

export const GRADCHECK_TOL = 1e-6;

/** Σ_k y_k·r_k in double precision. */
function project(y: Var, r: Float64Array): number {
  let s = 0;
  for (let k = 0; k < y.size; k++) s += y.data[k]! * r[k]!;
  return s;
}

export function gradcheck(f: (xs: Var[]) => Var, inputs: readonly Input[], opts: GradcheckOpts = {}): GradcheckReport {
  const tol = opts.tol ?? GRADCHECK_TOL;
  const r = rng(opts.seed ?? 12345);
  const vars = inputs.map((x, i) => (x.constant
    ? constant(Float64Array.from(x.data), x.shape, `c${i}`)
    : param(Float64Array.from(x.data), x.shape, `x${i}`)));
  const before = vars.map((v) => Float64Array.from(v.data));

  // Analytic pass, on top of pre-filled gradients (backward must add, not overwrite).
  const y = f(vars);
  assert.ok(y.data instanceof Float64Array, `float64 inputs must give a float64 output (op ${y.op})`);
  vars.forEach((v, i) => assert.deepEqual(v.data, before[i], `the forward modified input ${i}`));
  const proj = y.size === 1 ? Float64Array.of(1) : uniform(y.size, r);
  const offsets = vars.map((v) => (v.requiresGrad ? uniform(v.size, r) : null));
  vars.forEach((v, i) => { if (offsets[i]) v.grad = Float64Array.from(offsets[i]!); });
  backward(y, y.size === 1 ? undefined : proj);

  let maxErr = 0;
  let checked = 0;
  vars.forEach((v, i) => {
    if (!v.requiresGrad) { assert.equal(v.grad, null, `constant input ${i} got a gradient`); return; }
    assert.ok(v.grad instanceof Float64Array, `input ${i}: float64 gradient expected`);
    const off = offsets[i]!;
    const x = v.data;
    for (let e = 0; e < v.size; e++) {
      const analytic: number = v.grad[e]! - off[e]!;
      const x0 = x[e]!;
      const h = 1e-6 * Math.max(1, Math.abs(x0));
      const xp = x0 + h;
      const xm = x0 - h;
      x[e] = xp;
      const fp = noGrad(() => project(f(vars), proj));
      x[e] = xm;
      const fm = noGrad(() => project(f(vars), proj));
      x[e] = x0;
      const numeric = (fp - fm) / (xp - xm);
      const err = Math.abs(analytic - numeric) / Math.max(1, Math.abs(numeric));
      if (!(err <= tol)) {
        assert.fail(`input ${i} [${inputs[i]!.shape.join(', ')}] element ${e}: analytic ${analytic} vs numeric ${numeric} (err ${err.toExponential(2)} > ${tol})`);
      }
      if (err > maxErr) maxErr = err;
      checked++;
    }
  });
  return { maxErr, checked };
}
