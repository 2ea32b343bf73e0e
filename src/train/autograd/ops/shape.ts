/**
 * Views, slices, concatenation, gathers and scatters (the MoE dispatch is built from these).
 *
 * "Viewed as [rows, cols]" (gatherRows, scatterAddRows) means cols = the last dim and rows = everything before it.
 * reshape and sliceRows share the input's buffer (no copy): mutating the input's data in place shows through them.
 */
import { Var, alloc, result } from '../var.js';
import { transpose2d } from './linear.js';

const lastDim = (a: Var): number => (a.shape.length ? a.shape[a.shape.length - 1]! : 1);

function checkIdx(op: string, idx: ArrayLike<number>, bound: number): void {
  for (let i = 0; i < idx.length; i++) {
    const v = idx[i]!;
    if (!(v >= 0 && v < bound) || !Number.isInteger(v)) throw new Error(`${op}: index ${v} at ${i} outside [0, ${bound})`);
  }
}

/** Same data, new shape (shares the buffer; the gradient is reshaped back). One entry may be −1 (inferred). */
export function reshape(a: Var, shape: readonly number[]): Var {
  let known = 1;
  let infer = -1;
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === -1 && infer < 0) infer = i;
    else known *= shape[i]!;
  }
  let s = shape;
  if (infer >= 0) {
    if (known === 0 || a.size % known !== 0) throw new Error(`reshape: cannot infer a dim of [${shape.join(', ')}] for ${a.size} elements`);
    const copy = shape.slice();
    copy[infer] = a.size / known;
    s = copy;
  }
  // The Var constructor checks the element count.
  return result('reshape', a.data, s.slice(), [a], (o) => {
    const dy = o.grad!;
    const g = a.g();
    for (let i = 0; i < dy.length; i++) g[i]! += dy[i]!;
  });
}

/** Columns [start, end) of the last dim → [...leading, end − start]. */
export function sliceCols(a: Var, start: number, end: number): Var {
  const C = lastDim(a);
  if (!(start >= 0 && start <= end && end <= C)) throw new Error(`sliceCols: [${start}, ${end}) outside [0, ${C})`);
  const R = C ? a.size / C : 0;
  const W = end - start;
  const A = a.data;
  const out = alloc(A, R * W);
  for (let r = 0; r < R; r++) out.set(A.subarray(r * C + start, r * C + end), r * W);
  const shape = a.shape.length ? [...a.shape.slice(0, -1), W] : [W];
  return result('sliceCols', out, shape, [a], (o) => {
    const dy = o.grad!;
    const g = a.g();
    for (let r = 0; r < R; r++) {
      const gb = r * C + start;
      const db = r * W;
      for (let c = 0; c < W; c++) g[gb + c]! += dy[db + c]!;
    }
  });
}

/** Concatenate along the last dim (equal row counts). */
export function concatCols(parts: readonly Var[]): Var {
  if (!parts.length) throw new Error('concatCols: no inputs');
  const first = parts[0]!;
  const R = first.size / lastDim(first);
  let C = 0;
  const widths = parts.map((p) => {
    const w = lastDim(p);
    if (p.size !== R * w) throw new Error(`concatCols: [${p.shape.join(', ')}] does not have ${R} rows`);
    C += w;
    return w;
  });
  const out = alloc(first.data, R * C);
  let off = 0;
  for (let k = 0; k < parts.length; k++) {
    const w = widths[k]!;
    const P = parts[k]!.data;
    for (let r = 0; r < R; r++) out.set(P.subarray(r * w, r * w + w), r * C + off);
    off += w;
  }
  const shape = first.shape.length ? [...first.shape.slice(0, -1), C] : [C];
  return result('concatCols', out, shape, parts, (o) => {
    const dy = o.grad!;
    let col = 0;
    for (let k = 0; k < parts.length; k++) {
      const p = parts[k]!;
      const w = widths[k]!;
      if (p.requiresGrad) {
        const g = p.g();
        for (let r = 0; r < R; r++) {
          const db = r * C + col;
          const gb = r * w;
          for (let c = 0; c < w; c++) g[gb + c]! += dy[db + c]!;
        }
      }
      col += w;
    }
  });
}

/** Rows [start, end) of the first dim (a view: shares the buffer). */
export function sliceRows(a: Var, start: number, end: number): Var {
  const R = a.shape.length ? a.shape[0]! : 1;
  if (!(start >= 0 && start <= end && end <= R)) throw new Error(`sliceRows: [${start}, ${end}) outside [0, ${R})`);
  const rowSize = R ? a.size / R : 0;
  const out = a.data.subarray(start * rowSize, end * rowSize);
  const shape = [end - start, ...a.shape.slice(1)];
  return result('sliceRows', out, shape, [a], (o) => {
    const dy = o.grad!;
    const g = a.g();
    const base = start * rowSize;
    for (let i = 0; i < dy.length; i++) g[base + i]! += dy[i]!;
  });
}

/** Concatenate along the first dim (equal trailing shapes). */
export function concatRows(parts: readonly Var[]): Var {
  if (!parts.length) throw new Error('concatRows: no inputs');
  const first = parts[0]!;
  const trailing = first.shape.slice(1);
  let rows = 0;
  let n = 0;
  for (const p of parts) {
    const t = p.shape.slice(1);
    if (t.length !== trailing.length || t.some((d, i) => d !== trailing[i])) {
      throw new Error(`concatRows: [${p.shape.join(', ')}] does not match trailing shape [${trailing.join(', ')}]`);
    }
    rows += p.shape[0] ?? 1;
    n += p.size;
  }
  const out = alloc(first.data, n);
  const offsets: number[] = [];
  let off = 0;
  for (const p of parts) { offsets.push(off); out.set(p.data, off); off += p.size; }
  return result('concatRows', out, [rows, ...trailing], parts, (o) => {
    const dy = o.grad!;
    for (let k = 0; k < parts.length; k++) {
      const p = parts[k]!;
      if (!p.requiresGrad) continue;
      const g = p.g();
      const base = offsets[k]!;
      for (let i = 0; i < p.size; i++) g[i]! += dy[base + i]!;
    }
  });
}

/** out[i, :] = a[idx[i], :] for a viewed as [rows, cols]. Backward: scatter-add. */
export function gatherRows(a: Var, idx: Int32Array): Var {
  const C = lastDim(a);
  const R = C ? a.size / C : 0;
  checkIdx('gatherRows', idx, R);
  const n = idx.length;
  const A = a.data;
  const out = alloc(A, n * C);
  for (let i = 0; i < n; i++) { const s = idx[i]! * C; out.set(A.subarray(s, s + C), i * C); }
  return result('gatherRows', out, [n, C], [a], (o) => {
    const dy = o.grad!;
    const g = a.g();
    for (let i = 0; i < n; i++) {
      const gb = idx[i]! * C;
      const db = i * C;
      for (let c = 0; c < C; c++) g[gb + c]! += dy[db + c]!;
    }
  });
}

/** out[rows, cols] with out[idx[i], :] += a[i, :] (zeros elsewhere). Backward: gather. */
export function scatterAddRows(a: Var, idx: Int32Array, rows: number): Var {
  const n = idx.length;
  if (n === 0 ? a.size !== 0 : a.size % n !== 0) throw new Error(`scatterAddRows: ${a.size} elements do not split into ${n} rows`);
  const C = n ? a.size / n : lastDim(a);
  checkIdx('scatterAddRows', idx, rows);
  const A = a.data;
  const out = alloc(A, rows * C);
  for (let i = 0; i < n; i++) {
    const ob = idx[i]! * C;
    const ab = i * C;
    for (let c = 0; c < C; c++) out[ob + c]! += A[ab + c]!;
  }
  return result('scatterAddRows', out, [rows, C], [a], (o) => {
    const dy = o.grad!;
    const g = a.g();
    for (let i = 0; i < n; i++) {
      const db = idx[i]! * C;
      const gb = i * C;
      for (let c = 0; c < C; c++) g[gb + c]! += dy[db + c]!;
    }
  });
}

/** out[i] = a.data[idx[i]] over the flattened a → shape [idx.length]. */
export function gatherElements(a: Var, idx: Int32Array): Var {
  checkIdx('gatherElements', idx, a.size);
  const n = idx.length;
  const A = a.data;
  const out = alloc(A, n);
  for (let i = 0; i < n; i++) out[i] = A[idx[i]!]!;
  return result('gatherElements', out, [n], [a], (o) => {
    const dy = o.grad!;
    const g = a.g();
    for (let i = 0; i < n; i++) g[idx[i]!]! += dy[i]!;
  });
}

/** a[rows, cols] · s[rows] (s broadcast along each row). Gradients to both. cols = a.size / s.size. */
export function scaleRows(a: Var, s: Var): Var {
  const R = s.size;
  if (R === 0 ? a.size !== 0 : a.size % R !== 0) throw new Error(`scaleRows: ${a.size} elements do not split into ${R} rows`);
  const C = R ? a.size / R : 0;
  const A = a.data;
  const S = s.data;
  const out = alloc(A, A.length);
  for (let r = 0; r < R; r++) {
    const f = S[r]!;
    const base = r * C;
    for (let c = 0; c < C; c++) out[base + c] = A[base + c]! * f;
  }
  return result('scaleRows', out, a.shape, [a, s], (o) => {
    const dy = o.grad!;
    const ga = a.requiresGrad ? a.g() : null;
    const gs = s.requiresGrad ? s.g() : null;
    for (let r = 0; r < R; r++) {
      const base = r * C;
      if (ga) { const f = S[r]!; for (let c = 0; c < C; c++) ga[base + c]! += dy[base + c]! * f; }
      if (gs) { let acc = 0; for (let c = 0; c < C; c++) acc += dy[base + c]! * A[base + c]!; gs[r]! += acc; }
    }
  });
}

/** [R, C] → [C, R]. */
export function transpose(a: Var): Var {
  if (a.shape.length !== 2) throw new Error(`transpose: expected a 2-d Var, got [${a.shape.join(', ')}]`);
  const R = a.shape[0]!;
  const C = a.shape[1]!;
  return result('transpose', transpose2d(a.data, R, C), [C, R], [a], (o) => {
    const dy = o.grad!;
    const g = a.g();
    for (let c = 0; c < C; c++) for (let r = 0; r < R; r++) g[r * C + c]! += dy[c * R + r]!;
  });
}
