/** Softmax family and the LM loss. Rows are the last dim; reductions run in double precision. */
import { Var, alloc, result, type FArray } from '../var.js';

const lastDim = (a: Var): number => (a.shape.length ? a.shape[a.shape.length - 1]! : 1);

/** Softmax over the last dim (the expressions of backend/cpu/softmax.ts `softmaxRows`: bit-identical in float32). */
export function softmax(a: Var): Var {
  const X = a.data;
  const C = lastDim(a);
  const n = X.length;
  const Y = alloc(X, n);
  for (let base = 0; base < n; base += C) {
    let m = -Infinity;
    for (let i = 0; i < C; i++) m = Math.max(m, X[base + i]!);
    let s = 0;
    for (let i = 0; i < C; i++) { const e = Math.exp(X[base + i]! - m); Y[base + i] = e; s += e; }
    const r = 1 / s;
    for (let i = 0; i < C; i++) Y[base + i]! *= r;
  }
  return result('softmax', Y, a.shape, [a], (o) => {
    // dx = y ⊙ (dy − Σ dy·y)
    const dy = o.grad!;
    const g = a.g();
    for (let base = 0; base < n; base += C) {
      let dot = 0;
      for (let i = 0; i < C; i++) dot += dy[base + i]! * Y[base + i]!;
      for (let i = 0; i < C; i++) g[base + i]! += Y[base + i]! * (dy[base + i]! - dot);
    }
  });
}

/** Row-wise log Σ exp (stable), in double precision. */
function rowLse(X: FArray, C: number, rows: number): Float64Array {
  const lse = new Float64Array(rows);
  for (let r = 0, base = 0; r < rows; r++, base += C) {
    let m = -Infinity;
    for (let i = 0; i < C; i++) if (X[base + i]! > m) m = X[base + i]!;
    let s = 0;
    for (let i = 0; i < C; i++) s += Math.exp(X[base + i]! - m);
    lse[r] = m + Math.log(s);
  }
  return lse;
}

/** log-softmax over the last dim. */
export function logSoftmax(a: Var): Var {
  const X = a.data;
  const C = lastDim(a);
  const n = X.length;
  const rows = C ? n / C : 0;
  const lse = rowLse(X, C, rows);
  const Y = alloc(X, n);
  for (let r = 0, base = 0; r < rows; r++, base += C) {
    const l = lse[r]!;
    for (let i = 0; i < C; i++) Y[base + i] = X[base + i]! - l;
  }
  return result('logSoftmax', Y, a.shape, [a], (o) => {
    // dx = dy − softmax(x)·Σ dy
    const dy = o.grad!;
    const g = a.g();
    for (let r = 0, base = 0; r < rows; r++, base += C) {
      let sdy = 0;
      for (let i = 0; i < C; i++) sdy += dy[base + i]!;
      const l = lse[r]!;
      for (let i = 0; i < C; i++) g[base + i]! += dy[base + i]! - Math.exp(X[base + i]! - l) * sdy;
    }
  });
}

/**
 * Mean cross-entropy of logits [T, V] against targets (−1 = ignore) → scalar. Fused and stable.
 * loss = (1/N) Σ_{t: target ≥ 0} (logΣexp(x_t) − x_t[target_t]), N = number of non-ignored targets (0 → loss 0).
 * Backward: dx_t = (softmax(x_t) − onehot(target_t)) · dloss / N for kept rows, 0 for ignored ones.
 */
export function crossEntropy(logits: Var, targets: Int32Array): Var {
  const X = logits.data;
  const V = lastDim(logits);
  const T = V ? X.length / V : 0;
  if (targets.length !== T) throw new Error(`crossEntropy: ${targets.length} targets for ${T} rows of logits`);
  let N = 0;
  for (let t = 0; t < T; t++) {
    const y = targets[t]!;
    if (y === -1) continue;
    if (y < 0 || y >= V) throw new Error(`crossEntropy: target ${y} at row ${t} outside [0, ${V}) (−1 = ignore)`);
    N++;
  }
  // Kept-row probabilities, stored for the backward (saves recomputing T·V exponentials).
  const probs = alloc(X, X.length);
  let total = 0;
  for (let t = 0, base = 0; t < T; t++, base += V) {
    const y = targets[t]!;
    if (y < 0) continue;
    let m = -Infinity;
    for (let i = 0; i < V; i++) if (X[base + i]! > m) m = X[base + i]!;
    let s = 0;
    for (let i = 0; i < V; i++) { const e = Math.exp(X[base + i]! - m); probs[base + i] = e; s += e; }
    const r = 1 / s;
    for (let i = 0; i < V; i++) probs[base + i]! *= r;
    total += m + Math.log(s) - X[base + y]!;
  }
  const out = alloc(X, 1);
  out[0] = N ? total / N : 0;
  return result('crossEntropy', out, [1], [logits], (o) => {
    if (!N) return;
    const c = o.grad![0]! / N;
    const g = logits.g();
    for (let t = 0, base = 0; t < T; t++, base += V) {
      const y = targets[t]!;
      if (y < 0) continue;
      for (let i = 0; i < V; i++) g[base + i]! += c * probs[base + i]!;
      g[base + y]! -= c;
    }
  });
}
