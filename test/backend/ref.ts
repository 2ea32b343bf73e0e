/** Shared helpers for the backend tests: seeded data, a float64 reference matmul and its error bound. */
import { f32ToBf16 } from '../../src/tensor/dtype.js';
import type { Weight, WeightDType } from '../../src/tensor/weight.js';
import { makeRng } from '../../src/infer/sampling.js';

/** Seeded uniform [0, 1) source for test data (the engine's mulberry32). */
export const rng = makeRng;

export function randomF32(n: number, r: () => number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}

/** Fill `data` (from allocWeightData or a plain array) with random values of the weight's dtype. */
export function fillWeight(dtype: WeightDType, data: Float32Array | Uint16Array, r: () => number): void {
  if (dtype === 'f32') for (let i = 0; i < data.length; i++) data[i] = r() * 2 - 1;
  else for (let i = 0; i < data.length; i++) data[i] = f32ToBf16(r() * 2 - 1);
}

export function makeWeight(name: string, dtype: WeightDType, N: number, K: number, data: Float32Array | Uint16Array): Weight {
  return { name, dtype, shape: [N, K], data };
}

const scratch = new Float32Array(1);
const bits = new Uint32Array(scratch.buffer);
function weightValue(w: Weight, i: number): number {
  if (w.dtype === 'f32') return w.data[i]!;
  bits[0] = w.data[i]! << 16;
  return scratch[0]!;
}

/** Float64 reference y[T, N] = x · Wᵀ and, per output, Σ_k |x_k · w_k| (the scale of the rounding error). */
export function referenceLinear(x: Float32Array, T: number, K: number, w: Weight, N: number): { y: Float64Array; abs: Float64Array } {
  const y = new Float64Array(T * N);
  const abs = new Float64Array(T * N);
  const row = new Float64Array(K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) row[k] = weightValue(w, n * K + k);
    for (let t = 0; t < T; t++) {
      let s = 0;
      let a = 0;
      for (let k = 0; k < K; k++) {
        const p = x[t * K + k]! * row[k]!;
        s += p;
        a += Math.abs(p);
      }
      y[t * N + n] = s;
      abs[t * N + n] = a;
    }
  }
  return { y, abs };
}

/** Unit roundoff of float32. */
export const U32 = 2 ** -24;

/**
 * Higham's bound for a sum evaluated in float32 where every product passes through at most `depth` roundings
 * (its own multiply plus the additions after it): |ŷ − y| ≤ γ_depth · Σ|x_k w_k|, γ_d = d·u / (1 − d·u).
 */
export function gamma(depth: number, u = U32): number {
  return (depth * u) / (1 - depth * u);
}

/**
 * Worst-case rounding depth in the WASM kernels: one accumulator per (token, row) and lane; each 8-block adds two
 * products per lane (2 roundings per block after the product's own), then 2 adds for the horizontal sum, then up to
 * 7 tail adds, plus the product itself.
 */
export function wasmDepth(K: number): number {
  return 2 * Math.ceil(K / 8) + 2 + 7 + 1;
}

/** Assert-free comparison: returns the worst violation as a message, or undefined when all outputs are within bound. */
export function checkBound(got: Float32Array, ref: { y: Float64Array; abs: Float64Array }, bound: (i: number) => number): string | undefined {
  for (let i = 0; i < ref.y.length; i++) {
    const err = Math.abs(got[i]! - ref.y[i]!);
    const b = bound(i);
    if (!(err <= b)) return `output ${i}: got ${got[i]}, reference ${ref.y[i]}, |err| ${err} > bound ${b}`;
  }
  return undefined;
}

export function bitsEqual(a: Float32Array, b: Float32Array): string | undefined {
  if (a.length !== b.length) return `length ${a.length} vs ${b.length}`;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return `element ${i}: ${a[i]} vs ${b[i]}`;
  return undefined;
}
