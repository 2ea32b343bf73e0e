/**
 * Differentiable ops the trainable model needs beyond src/train/autograd/ops (kept here, not in the autograd files).
 */
import { alloc, result, type Var } from '../autograd/var.js';

/**
 * Each row of a [R, C] divided by (its sum + eps): the renormalisation of top-k gate weights
 * (`w / (Σ w + eps)`, as DeepSeek routers do it; eps = 0 for Mixtral-style `w / Σ w`).
 * Backward: with s = Σ a + eps and y = a / s, da_i = (dy_i − Σ_j dy_j·y_j) / s.
 */
export function normalizeRows(a: Var, eps = 0): Var {
  const C = a.shape[a.shape.length - 1] ?? 1;
  const R = C ? a.size / C : 0;
  const A = a.data;
  const out = alloc(A, A.length);
  const sums = new Float64Array(R);
  for (let r = 0; r < R; r++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += A[r * C + c]!;
    // Round the denominator like a float32 tensor op would.
    const d = A instanceof Float32Array ? Math.fround(Math.fround(s) + eps) : s + eps;
    sums[r] = d;
    for (let c = 0; c < C; c++) out[r * C + c] = A[r * C + c]! / d;
  }
  return result('normalizeRows', out, a.shape, [a], (o) => {
    const dy = o.grad!;
    const g = a.g();
    const Y = o.data;
    for (let r = 0; r < R; r++) {
      let dot = 0;
      for (let c = 0; c < C; c++) dot += dy[r * C + c]! * Y[r * C + c]!;
      const inv = 1 / sums[r]!;
      for (let c = 0; c < C; c++) g[r * C + c]! += (dy[r * C + c]! - dot) * inv;
    }
  });
}
