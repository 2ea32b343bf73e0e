/**
 * y[T, N] = x[T, K] · W[N, K]ᵀ (+ bias): the nn.Linear layout every checkpoint uses.
 * Dispatches to the WASM SIMD kernel (and its worker pool) when it is loaded, otherwise runs the plain-TS loop.
 */
import type { Weight } from '../../tensor/weight.js';

export type LinearKernel = (x: Float32Array, T: number, K: number, w: Weight, N: number, out: Float32Array) => void;

let accelerated: LinearKernel | undefined;

/** Installed by the WASM backend once its module is instantiated. */
export function setLinearKernel(k: LinearKernel | undefined): void {
  accelerated = k;
}

export function linearKernelName(): string {
  return accelerated ? 'wasm-simd' : 'ts';
}

export function linearInto(x: Float32Array, T: number, K: number, w: Weight, out: Float32Array, bias?: Weight): void {
  const N = w.shape[0]!;
  if (w.shape.length !== 2 || w.shape[1] !== K) throw new Error(`linear: ${w.name} has shape [${w.shape.join(', ')}], expected [N, ${K}]`);
  if (accelerated) accelerated(x, T, K, w, N, out);
  else linearTs(x, T, K, w, N, out);
  if (bias) {
    const b = bias.data as Float32Array;
    if (bias.dtype !== 'f32') throw new Error(`linear: bias ${bias.name} must be f32`);
    for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) out[t * N + n]! += b[n]!;
  }
}

export function linear(x: Float32Array, T: number, K: number, w: Weight, bias?: Weight): Float32Array {
  const out = new Float32Array(T * w.shape[0]!);
  linearInto(x, T, K, w, out, bias);
  return out;
}

/** Plain TypeScript reference kernel (also the fallback where WebAssembly SIMD is missing). */
export function linearTs(x: Float32Array, T: number, K: number, w: Weight, N: number, out: Float32Array): void {
  if (w.dtype === 'f32') {
    const W = w.data as Float32Array;
    for (let n = 0; n < N; n++) {
      const base = n * K;
      for (let t = 0; t < T; t++) {
        const xb = t * K;
        let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        let k = 0;
        for (; k + 4 <= K; k += 4) {
          s0 += x[xb + k]! * W[base + k]!;
          s1 += x[xb + k + 1]! * W[base + k + 1]!;
          s2 += x[xb + k + 2]! * W[base + k + 2]!;
          s3 += x[xb + k + 3]! * W[base + k + 3]!;
        }
        for (; k < K; k++) s0 += x[xb + k]! * W[base + k]!;
        out[t * N + n] = s0 + s1 + s2 + s3;
      }
    }
    return;
  }
  const W = w.data as Uint16Array;
  const row = new Float32Array(K);
  const rowBits = new Uint32Array(row.buffer);
  for (let n = 0; n < N; n++) {
    const base = n * K;
    for (let k = 0; k < K; k++) rowBits[k] = W[base + k]! << 16;
    for (let t = 0; t < T; t++) {
      const xb = t * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += x[xb + k]! * row[k]!;
      out[t * N + n] = s;
    }
  }
}
