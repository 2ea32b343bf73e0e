/**
 * Normalisations with learned scales. Forwards evaluate the same double-precision expressions as
 * backend/cpu/norm.ts (float32 outputs are bit-identical to the inference kernels); float64 inputs skip the
 * kernel's intermediate float32 rounding.
 */
import { Var, alloc, result } from '../var.js';

/** RMSNorm over consecutive groups of w.size elements (per-head norms included): x / sqrt(mean x² + eps) · w. */
export function rmsNorm(x: Var, w: Var, eps: number): Var {
  const G = w.size;
  if (G === 0 || x.size % G !== 0) throw new Error(`rmsNorm: ${x.size} elements do not split into groups of ${G}`);
  const X = x.data;
  const W = w.data;
  const n = X.length;
  const groups = n / G;
  const rs = new Float64Array(groups);
  const out = alloc(X, n);
  const f32 = !(out instanceof Float64Array);
  for (let gi = 0, base = 0; gi < groups; gi++, base += G) {
    let ss = 0;
    for (let i = 0; i < G; i++) ss += X[base + i]! * X[base + i]!;
    const r = 1 / Math.sqrt(ss / G + eps);
    rs[gi] = r;
    // backend/cpu/norm.ts rounds x·r to float32 before the weight.
    if (f32) for (let i = 0; i < G; i++) out[base + i] = Math.fround(X[base + i]! * r) * W[i]!;
    else for (let i = 0; i < G; i++) out[base + i] = X[base + i]! * r * W[i]!;
  }
  return result('rmsNorm', out, x.shape, [x, w], (o) => {
    // y_i = x_i·r·w_i, r = (Σx²/G + eps)^(−1/2): dx_i = r·dy_i·w_i − x_i·r³/G·Σ_j dy_j·w_j·x_j; dw_i += Σ dy_i·x_i·r.
    const dy = o.grad!;
    const gx = x.requiresGrad ? x.g() : null;
    const gw = w.requiresGrad ? w.g() : null;
    for (let gi = 0, base = 0; gi < groups; gi++, base += G) {
      const r = rs[gi]!;
      if (gx) {
        let dot = 0;
        for (let i = 0; i < G; i++) dot += dy[base + i]! * W[i]! * X[base + i]!;
        const c = (r * r * r * dot) / G;
        for (let i = 0; i < G; i++) gx[base + i]! += r * dy[base + i]! * W[i]! - X[base + i]! * c;
      }
      if (gw) for (let i = 0; i < G; i++) gw[i]! += dy[base + i]! * X[base + i]! * r;
    }
  });
}

/** LayerNorm over rows of w.size elements, optional bias. */
export function layerNorm(x: Var, w: Var, b: Var | undefined, eps: number): Var {
  const G = w.size;
  if (G === 0 || x.size % G !== 0) throw new Error(`layerNorm: ${x.size} elements do not split into rows of ${G}`);
  if (b && b.size !== G) throw new Error(`layerNorm: bias has ${b.size} elements, weight ${G}`);
  const X = x.data;
  const W = w.data;
  const Bd = b?.data;
  const n = X.length;
  const rows = n / G;
  const means = new Float64Array(rows);
  const rs = new Float64Array(rows);
  const out = alloc(X, n);
  for (let ri = 0, base = 0; ri < rows; ri++, base += G) {
    let mean = 0;
    for (let i = 0; i < G; i++) mean += X[base + i]!;
    mean /= G;
    let v = 0;
    for (let i = 0; i < G; i++) { const d = X[base + i]! - mean; v += d * d; }
    const r = 1 / Math.sqrt(v / G + eps);
    means[ri] = mean;
    rs[ri] = r;
    // Same expression (and evaluation order) as backend/cpu/norm.ts.
    if (Bd) for (let i = 0; i < G; i++) out[base + i] = (X[base + i]! - mean) * r * W[i]! + Bd[i]!;
    else for (let i = 0; i < G; i++) out[base + i] = (X[base + i]! - mean) * r * W[i]! + 0;
  }
  const parents = b ? [x, w, b] : [x, w];
  return result('layerNorm', out, x.shape, parents, (o) => {
    // x̂ = (x − μ)·r, g = dy·w: dx = r·(g − mean(g) − x̂·mean(g·x̂)); dw += dy·x̂; db += dy.
    const dy = o.grad!;
    const gx = x.requiresGrad ? x.g() : null;
    const gw = w.requiresGrad ? w.g() : null;
    const gb = b?.requiresGrad ? b.g() : null;
    for (let ri = 0, base = 0; ri < rows; ri++, base += G) {
      const mean = means[ri]!;
      const r = rs[ri]!;
      if (gx) {
        let sg = 0;
        let sgx = 0;
        for (let i = 0; i < G; i++) {
          const g = dy[base + i]! * W[i]!;
          sg += g;
          sgx += g * (X[base + i]! - mean) * r;
        }
        sg /= G;
        sgx /= G;
        for (let i = 0; i < G; i++) {
          const xh = (X[base + i]! - mean) * r;
          gx[base + i]! += r * (dy[base + i]! * W[i]! - sg - xh * sgx);
        }
      }
      if (gw) for (let i = 0; i < G; i++) gw[i]! += dy[base + i]! * (X[base + i]! - mean) * r;
      if (gb) for (let i = 0; i < G; i++) gb[i]! += dy[base + i]!;
    }
  });
}
