/** Reductions. Sums accumulate in double precision (JS numbers) and round once on store. */
import { Var, alloc, result } from '../var.js';

const lastDim = (a: Var): number => (a.shape.length ? a.shape[a.shape.length - 1]! : 1);

/** Σ all elements → scalar [1]. */
export function sum(a: Var): Var {
  const A = a.data;
  const n = A.length;
  let s = 0;
  for (let i = 0; i < n; i++) s += A[i]!;
  const out = alloc(A, 1);
  out[0] = s;
  return result('sum', out, [1], [a], (o) => {
    const d = o.grad![0]!;
    const g = a.g();
    for (let i = 0; i < n; i++) g[i]! += d;
  });
}

/** mean of all elements → scalar [1]. */
export function mean(a: Var): Var {
  const A = a.data;
  const n = A.length;
  let s = 0;
  for (let i = 0; i < n; i++) s += A[i]!;
  const out = alloc(A, 1);
  out[0] = s / n;
  return result('mean', out, [1], [a], (o) => {
    const d = o.grad![0]! / n;
    const g = a.g();
    for (let i = 0; i < n; i++) g[i]! += d;
  });
}

/** Σ over the last dim → [...leading, 1]... returned with shape [rows]. */
export function sumCols(a: Var): Var {
  const A = a.data;
  const C = lastDim(a);
  const R = C ? A.length / C : 0;
  const out = alloc(A, R);
  for (let r = 0; r < R; r++) {
    let s = 0;
    const base = r * C;
    for (let c = 0; c < C; c++) s += A[base + c]!;
    out[r] = s;
  }
  return result('sumCols', out, [R], [a], (o) => {
    const dy = o.grad!;
    const g = a.g();
    for (let r = 0; r < R; r++) {
      const d = dy[r]!;
      const base = r * C;
      for (let c = 0; c < C; c++) g[base + c]! += d;
    }
  });
}

/** mean over rows (first dims) → [cols]. */
export function meanRows(a: Var): Var {
  const A = a.data;
  const C = lastDim(a);
  const R = C ? A.length / C : 0;
  const acc = new Float64Array(C);
  for (let r = 0; r < R; r++) {
    const base = r * C;
    for (let c = 0; c < C; c++) acc[c]! += A[base + c]!;
  }
  const out = alloc(A, C);
  for (let c = 0; c < C; c++) out[c] = acc[c]! / R;
  return result('meanRows', out, [C], [a], (o) => {
    const dy = o.grad!;
    const g = a.g();
    const inv = 1 / R;
    for (let r = 0; r < R; r++) {
      const base = r * C;
      for (let c = 0; c < C; c++) g[base + c]! += dy[c]! * inv;
    }
  });
}

/** log Σ exp over the last dim (stable) → [rows]. */
export function logSumExp(a: Var): Var {
  const A = a.data;
  const C = lastDim(a);
  const R = C ? A.length / C : 0;
  const lse = new Float64Array(R);
  for (let r = 0; r < R; r++) {
    const base = r * C;
    let m = -Infinity;
    for (let c = 0; c < C; c++) if (A[base + c]! > m) m = A[base + c]!;
    if (m === -Infinity || m === Infinity) { lse[r] = m; continue; }
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(A[base + c]! - m);
    lse[r] = m + Math.log(s);
  }
  const out = alloc(A, R);
  out.set(lse);
  return result('logSumExp', out, [R], [a], (o) => {
    // d lse / d x_c = softmax(x)_c = exp(x_c − lse).
    const dy = o.grad!;
    const g = a.g();
    for (let r = 0; r < R; r++) {
      const d = dy[r]!;
      const l = lse[r]!;
      if (!Number.isFinite(l)) continue;
      const base = r * C;
      for (let c = 0; c < C; c++) g[base + c]! += d * Math.exp(A[base + c]! - l);
    }
  });
}
