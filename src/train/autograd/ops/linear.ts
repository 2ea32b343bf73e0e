/**
 * y[T, N] = x[T, K] · W[N, K]ᵀ (+ b[N]). Backward: dx = dy · W, dW += dyᵀ · x, db += Σ_t dy.
 * float32 runs every product on the CPU backend's linear kernel (WASM SIMD + threads) through transposes;
 * float64 uses plain loops (for finite-difference checks).
 */
import { linearInto } from '../../../backend/cpu/linear.js';
import type { Weight } from '../../../tensor/weight.js';
import { Var, alloc, result, type FArray } from '../var.js';

const asWeight = (data: Float32Array, N: number, K: number): Weight => ({ name: 'autograd', dtype: 'f32', shape: [N, K], data });

export function transpose2d(a: FArray, R: number, C: number): FArray {
  const out = alloc(a, R * C);
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) out[c * R + r] = a[r * C + c]!;
  return out;
}

/** out[M, N] (+)= a[M, K] · b[N, K]ᵀ */
export function matmulNT(a: FArray, b: FArray, M: number, K: number, N: number, out: FArray = alloc(a, M * N), accumulate = false): FArray {
  if (a instanceof Float32Array && b instanceof Float32Array && out instanceof Float32Array) {
    if (!accumulate) { linearInto(a, M, K, asWeight(b, N, K), out); return out; }
    const tmp = new Float32Array(M * N);
    linearInto(a, M, K, asWeight(b, N, K), tmp);
    for (let i = 0; i < tmp.length; i++) out[i]! += tmp[i]!;
    return out;
  }
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[m * K + k]! * b[n * K + k]!;
      out[m * N + n] = (accumulate ? out[m * N + n]! : 0) + s;
    }
  }
  return out;
}

export function linear(x: Var, w: Var, b?: Var): Var {
  const K = w.shape[1]!;
  const N = w.shape[0]!;
  if (w.shape.length !== 2 || x.size % K !== 0) throw new Error(`linear: x [${x.shape.join(', ')}] does not match W [${w.shape.join(', ')}]`);
  const T = x.size / K;
  const y = matmulNT(x.data, w.data, T, K, N);
  if (b) for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) y[t * N + n]! += b.data[n]!;
  const parents = b ? [x, w, b] : [x, w];
  return result('linear', y, [...x.shape.slice(0, -1), N], parents, (out) => {
    const dy = out.grad!;
    if (x.requiresGrad) matmulNT(dy, transpose2d(w.data, N, K), T, N, K, x.g(), true);
    if (w.requiresGrad) matmulNT(transpose2d(dy, T, N), transpose2d(x.data, T, K), N, T, K, w.g(), true);
    if (b?.requiresGrad) {
      const gb = b.g();
      for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) gb[n]! += dy[t * N + n]!;
    }
  });
}
