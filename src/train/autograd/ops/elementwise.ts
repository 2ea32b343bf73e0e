/**
 * Elementwise ops. Binary ops accept equal sizes, or `b` broadcast over the leading dims of `a`
 * (b.size divides a.size and b matches a's trailing elements: bias-style), or a scalar Var (size 1).
 * "Matches a's trailing elements" is checked: b.size must be the product of some trailing dims of a's shape.
 * (Also accepted: `a` the smaller operand, broadcast the same way over `b`; the output takes the larger shape.)
 *
 * Activations compute exactly what the inference kernels in backend/cpu/activations.ts compute (same double-precision
 * expression, one rounding on store for float32), so float32 outputs are bit-identical to inference. Their backward
 * is the exact derivative of that expression (for GELU: of the erf approximation used there, not of the true erf).
 */
import { erf, gelu as geluValue, sigmoid as sigmoidValue, silu as siluValue } from '../../../backend/cpu/activations.js';
import { Var, alloc, result, type FArray } from '../var.js';

// ---------------------------------------------------------------------------------------------------------------
// Binary ops with broadcasting.

interface Bcast {
  /** The larger operand's size (= output size) and shape. */
  n: number;
  shape: readonly number[];
  /** Sizes of a and b as read (one of them equals n; the other divides it). */
  na: number;
  nb: number;
}

/** Whether `m` is the element count of some trailing block of `shape` (1 = the empty block: a scalar). */
function isTrailingBlock(shape: readonly number[], m: number): boolean {
  let p = 1;
  if (p === m) return true;
  for (let i = shape.length - 1; i >= 0; i--) {
    p *= shape[i]!;
    if (p === m) return true;
  }
  return false;
}

function broadcast(op: string, a: Var, b: Var): Bcast {
  const na = a.size;
  const nb = b.size;
  if (na === nb) return { n: na, shape: a.shape, na, nb };
  // The smaller operand must cover whole trailing dims of the larger one (a [T, D] with b [D] or [1], a [T, H, d] with
  // b [H·d]); a [T, D] with b [T] (a per-row factor: use scaleRows) is rejected rather than broadcast cyclically.
  if (nb < na && isTrailingBlock(a.shape, nb)) return { n: na, shape: a.shape, na, nb };
  if (na < nb && isTrailingBlock(b.shape, na)) return { n: nb, shape: b.shape, na, nb };
  throw new Error(`${op}: shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] do not broadcast`);
}

/** dst[i mod dst.length] += s · src[i] over i < n (reduces a gradient onto a broadcast operand). */
function accumBroadcast(dst: FArray, src: FArray, n: number, s: number): void {
  const m = dst.length;
  if (m === n) {
    if (s === 1) for (let i = 0; i < n; i++) dst[i]! += src[i]!;
    else for (let i = 0; i < n; i++) dst[i]! += s * src[i]!;
    return;
  }
  if (m === 1) {
    let acc = 0;
    for (let i = 0; i < n; i++) acc += src[i]!;
    dst[0]! += s * acc;
    return;
  }
  for (let base = 0; base < n; base += m) for (let i = 0; i < m; i++) dst[i]! += s * src[base + i]!;
}

/** dst[i mod dst.length] += src[i] · other[i mod other.length] over i < n (mul's gradient, broadcast-aware). */
function accumProduct(dst: FArray, src: FArray, other: FArray, n: number): void {
  const m = dst.length;
  const o = other.length;
  if (m === n && o === n) { for (let i = 0; i < n; i++) dst[i]! += src[i]! * other[i]!; return; }
  if (m === n) {
    if (o === 1) { const c = other[0]!; for (let i = 0; i < n; i++) dst[i]! += src[i]! * c; return; }
    for (let base = 0; base < n; base += o) for (let i = 0; i < o; i++) dst[base + i]! += src[base + i]! * other[i]!;
    return;
  }
  // dst is the broadcast operand, `other` the full one.
  if (m === 1) {
    let acc = 0;
    for (let i = 0; i < n; i++) acc += src[i]! * other[i]!;
    dst[0]! += acc;
    return;
  }
  for (let base = 0; base < n; base += m) for (let i = 0; i < m; i++) dst[i]! += src[base + i]! * other[base + i]!;
}

function addSub(op: 'add' | 'sub', a: Var, b: Var): Var {
  const bc = broadcast(op, a, b);
  const { n, na, nb } = bc;
  const A = a.data;
  const B = b.data;
  const out = alloc(na >= nb ? A : B, n);
  const sg = op === 'add' ? 1 : -1;
  if (na === nb) {
    if (sg > 0) for (let i = 0; i < n; i++) out[i] = A[i]! + B[i]!;
    else for (let i = 0; i < n; i++) out[i] = A[i]! - B[i]!;
  } else if (na === n) {
    for (let base = 0; base < n; base += nb) {
      if (sg > 0) for (let i = 0; i < nb; i++) out[base + i] = A[base + i]! + B[i]!;
      else for (let i = 0; i < nb; i++) out[base + i] = A[base + i]! - B[i]!;
    }
  } else {
    for (let base = 0; base < n; base += na) {
      if (sg > 0) for (let i = 0; i < na; i++) out[base + i] = A[i]! + B[base + i]!;
      else for (let i = 0; i < na; i++) out[base + i] = A[i]! - B[base + i]!;
    }
  }
  return result(op, out, bc.shape, [a, b], (o) => {
    const dy = o.grad!;
    if (a.requiresGrad) accumBroadcast(a.g(), dy, n, 1);
    if (b.requiresGrad) accumBroadcast(b.g(), dy, n, sg);
  });
}

export function add(a: Var, b: Var): Var { return addSub('add', a, b); }
export function sub(a: Var, b: Var): Var { return addSub('sub', a, b); }

export function mul(a: Var, b: Var): Var {
  const bc = broadcast('mul', a, b);
  const { n, na, nb } = bc;
  const A = a.data;
  const B = b.data;
  const out = alloc(na >= nb ? A : B, n);
  if (na === nb) for (let i = 0; i < n; i++) out[i] = A[i]! * B[i]!;
  else if (na === n) { for (let base = 0; base < n; base += nb) for (let i = 0; i < nb; i++) out[base + i] = A[base + i]! * B[i]!; }
  else for (let base = 0; base < n; base += na) for (let i = 0; i < na; i++) out[base + i] = A[i]! * B[base + i]!;
  return result('mul', out, bc.shape, [a, b], (o) => {
    const dy = o.grad!;
    if (a.requiresGrad) accumProduct(a.g(), dy, B, n);
    if (b.requiresGrad) accumProduct(b.g(), dy, A, n);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Unary ops.

/** a · s for a constant number s. */
export function scale(a: Var, s: number): Var {
  const A = a.data;
  const n = A.length;
  const out = alloc(A, n);
  for (let i = 0; i < n; i++) out[i] = A[i]! * s;
  return result('scale', out, a.shape, [a], (o) => accumBroadcast(a.g(), o.grad!, n, s));
}

/** a + s for a constant number s. */
export function addScalar(a: Var, s: number): Var {
  const A = a.data;
  const n = A.length;
  const out = alloc(A, n);
  for (let i = 0; i < n; i++) out[i] = A[i]! + s;
  return result('addScalar', out, a.shape, [a], (o) => accumBroadcast(a.g(), o.grad!, n, 1));
}

type Kind = 'silu' | 'sigmoid' | 'relu' | 'tanh' | 'gelu' | 'exp' | 'log' | 'square' | 'abs';

/** y = f(x) elementwise; dx += dy · f'(x). Each kind is a separate tight loop (no per-element callbacks). */
function unary(kind: Kind, a: Var): Var {
  const X = a.data;
  const n = X.length;
  const Y = alloc(X, n);
  switch (kind) {
    case 'silu': for (let i = 0; i < n; i++) Y[i] = siluValue(X[i]!); break;
    case 'sigmoid': for (let i = 0; i < n; i++) Y[i] = sigmoidValue(X[i]!); break;
    case 'relu': for (let i = 0; i < n; i++) { const x = X[i]!; Y[i] = x > 0 ? x : 0; } break;
    case 'tanh': for (let i = 0; i < n; i++) Y[i] = Math.tanh(X[i]!); break;
    case 'gelu': for (let i = 0; i < n; i++) Y[i] = geluValue(X[i]!); break;
    case 'exp': for (let i = 0; i < n; i++) Y[i] = Math.exp(X[i]!); break;
    case 'log': for (let i = 0; i < n; i++) Y[i] = Math.log(X[i]!); break;
    case 'square': for (let i = 0; i < n; i++) { const x = X[i]!; Y[i] = x * x; } break;
    case 'abs': for (let i = 0; i < n; i++) Y[i] = Math.abs(X[i]!); break;
  }
  return result(kind, Y, a.shape, [a], (o) => {
    const dy = o.grad!;
    const g = a.g();
    switch (kind) {
      case 'silu': for (let i = 0; i < n; i++) g[i]! += dy[i]! * siluGrad(X[i]!); break;
      case 'sigmoid': for (let i = 0; i < n; i++) { const s = sigmoidValue(X[i]!); g[i]! += dy[i]! * s * (1 - s); } break;
      case 'relu': for (let i = 0; i < n; i++) if (X[i]! > 0) g[i]! += dy[i]!; break;
      case 'tanh': for (let i = 0; i < n; i++) { const t = Math.tanh(X[i]!); g[i]! += dy[i]! * (1 - t * t); } break;
      case 'gelu': for (let i = 0; i < n; i++) g[i]! += dy[i]! * geluGrad(X[i]!); break;
      case 'exp': for (let i = 0; i < n; i++) g[i]! += dy[i]! * Math.exp(X[i]!); break;
      case 'log': for (let i = 0; i < n; i++) g[i]! += dy[i]! / X[i]!; break;
      case 'square': for (let i = 0; i < n; i++) g[i]! += 2 * dy[i]! * X[i]!; break;
      case 'abs': for (let i = 0; i < n; i++) { const x = X[i]!; if (x > 0) g[i]! += dy[i]!; else if (x < 0) g[i]! -= dy[i]!; } break;
    }
  });
}

export function silu(a: Var): Var { return unary('silu', a); }
export function sigmoid(a: Var): Var { return unary('sigmoid', a); }
export function relu(a: Var): Var { return unary('relu', a); }
export function tanh(a: Var): Var { return unary('tanh', a); }
/** Exact (erf) GELU. */
export function gelu(a: Var): Var { return unary('gelu', a); }
export function exp(a: Var): Var { return unary('exp', a); }
/** Natural log (inputs must be > 0). */
export function log(a: Var): Var { return unary('log', a); }
export function square(a: Var): Var { return unary('square', a); }
/** |a| (subgradient 0 at 0). */
export function abs(a: Var): Var { return unary('abs', a); }

// ---------------------------------------------------------------------------------------------------------------
// Derivatives of the inference activations.

/** d/dx x·σ(x) = σ(x)·(1 + x·(1 − σ(x))). */
export function siluGrad(x: number): number {
  const s = 1 / (1 + Math.exp(-x));
  return s * (1 + x * (1 - s));
}

/**
 * d/dx of activations.ts `erf` (Numerical Recipes erfc: r(z) = t·exp(−z² + P(t)), t = 1/(1 + z/2), z = |x|,
 * erf = ±(1 − r)): in both branches erf'(x) = −r'(z), with r'(z) = r·(−2z + (P'(t) + 1/t)·t'(z)), t' = −t²/2.
 * This is the derivative of the function actually evaluated (it differs from 2/√π·e^(−x²) by ~1e-7).
 */
export function erfGrad(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const P = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  const dP = 1.00002368 + t * (2 * 0.37409196 + t * (3 * 0.09678418 + t * (4 * -0.18628806 + t * (5 * 0.27886807 +
    t * (6 * -1.13520398 + t * (7 * 1.48851587 + t * (8 * -0.82215223 + t * 9 * 0.17087277)))))));
  const r = t * Math.exp(-z * z + P);
  const dt = -0.5 * t * t;
  const dr = r * (-2 * z + (dP + 1 / t) * dt);
  return -dr;
}

/** d/dx 0.5·x·(1 + erf(x/√2)) with activations.ts `erf`. */
export function geluGrad(x: number): number {
  const u = x / Math.SQRT2;
  const erfU = erf(u);
  return 0.5 * (1 + erfU) + 0.5 * x * erfGrad(u) / Math.SQRT2;
}

// ---------------------------------------------------------------------------------------------------------------
// Gated activation (the expert / dense FFN nonlinearity).

/** act(gate) · up for 'silu' | 'gelu' | 'gpt_oss' (clamped: (clamp(up,±L)+1)·g·σ(αg), g = min(gate, L)). */
export function gatedAct(kind: 'silu' | 'gelu' | 'gpt_oss', gate: Var, up: Var, opts?: { alpha: number; limit: number }): Var {
  if (gate.size !== up.size) throw new Error(`gatedAct: gate has ${gate.size} elements, up ${up.size}`);
  const G = gate.data;
  const U = up.data;
  const n = G.length;
  const out = alloc(G, n);
  // Defaults as in backend/cpu/activations.ts.
  const alpha = opts?.alpha ?? 1.702;
  const limit = opts?.limit ?? 7.0;
  if (kind === 'silu') for (let i = 0; i < n; i++) out[i] = siluValue(G[i]!) * U[i]!;
  else if (kind === 'gelu') for (let i = 0; i < n; i++) out[i] = geluValue(G[i]!) * U[i]!;
  else if (kind === 'gpt_oss') {
    for (let i = 0; i < n; i++) {
      const g = Math.min(G[i]!, limit);
      const u = Math.max(-limit, Math.min(U[i]!, limit));
      out[i] = (u + 1) * (g * sigmoidValue(g * alpha));
    }
  } else throw new Error(`gatedAct: unknown activation ${String(kind)}`);
  return result(`gatedAct.${kind}`, out, gate.shape, [gate, up], (o) => {
    const dy = o.grad!;
    const gg = gate.requiresGrad ? gate.g() : null;
    const gu = up.requiresGrad ? up.g() : null;
    if (kind === 'silu') {
      // One exponential per element: σ = σ(x), silu = x·σ, silu' = σ·(1 + x·(1 − σ)).
      for (let i = 0; i < n; i++) {
        const x = G[i]!;
        const sg = 1 / (1 + Math.exp(-x));
        const d = dy[i]!;
        if (gg) gg[i]! += d * U[i]! * sg * (1 + x * (1 - sg));
        if (gu) gu[i]! += d * x * sg;
      }
    } else if (kind === 'gelu') {
      if (gg) for (let i = 0; i < n; i++) gg[i]! += dy[i]! * U[i]! * geluGrad(G[i]!);
      if (gu) for (let i = 0; i < n; i++) gu[i]! += dy[i]! * geluValue(G[i]!);
    } else {
      for (let i = 0; i < n; i++) {
        const x = G[i]!;
        const y = U[i]!;
        const g = Math.min(x, limit);
        const u = Math.max(-limit, Math.min(y, limit));
        const s = sigmoidValue(g * alpha);
        const d = dy[i]!;
        // min(gate, L) passes the gradient below L; clamp(up, ±L) inside (−L, L) (subgradient 0 at the edges).
        if (gg && x < limit) gg[i]! += d * (u + 1) * (s + g * alpha * s * (1 - s));
        if (gu && y < limit && y > -limit) gu[i]! += d * g * s;
      }
    }
  });
}
