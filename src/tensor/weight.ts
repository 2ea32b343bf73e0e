/**
 * A stored parameter. Weights keep the dtype they were loaded with when the kernels can read it
 * directly (f32, bf16); f16 is widened to f32 on load. `data` may be a view into the WASM heap,
 * so kernels can read it in place.
 */
export type WeightDType = 'f32' | 'bf16';

export interface Weight {
  readonly name: string;
  readonly dtype: WeightDType;
  readonly shape: readonly number[];
  readonly data: Float32Array | Uint16Array;
}

import { bf16ArrayToF32 } from './dtype.js';
import { numel } from './tensor.js';

/** Float32 copy (or the same array, for f32 weights) of a weight's values. */
export function weightToF32(w: Weight): Float32Array {
  if (w.dtype === 'f32') return w.data as Float32Array;
  return bf16ArrayToF32(w.data as Uint16Array);
}

export function weightBytes(w: Weight): number {
  return numel(w.shape) * (w.dtype === 'f32' ? 4 : 2);
}

/** A view on rows [start, end) of the leading dimension (e.g. one expert of a fused [E, N, K] tensor). */
export function weightSlice(w: Weight, start: number, end: number, name = `${w.name}[${start}:${end}]`): Weight {
  const inner = numel(w.shape) / w.shape[0]!;
  return { name, dtype: w.dtype, shape: [end - start, ...w.shape.slice(1)], data: w.data.subarray(start * inner, end * inner) };
}

/**
 * One weight holding `ws` stacked along the leading dimension (e.g. q, k and v projections as one [Nq + 2·Nk, D]
 * matrix, or their biases as one vector): the same dtype and trailing shape are required; the data is copied.
 */
export function concatRows(ws: readonly Weight[], name: string): Weight {
  const first = ws[0];
  if (!first) throw new Error('concatRows: no weights');
  const inner = first.shape.slice(1);
  for (const w of ws) {
    if (w.dtype !== first.dtype || w.shape.length !== first.shape.length || w.shape.slice(1).some((d, i) => d !== inner[i])) {
      throw new Error(`concatRows: ${w.name} (${w.dtype} [${w.shape}]) does not stack with ${first.name} (${first.dtype} [${first.shape}])`);
    }
  }
  const rows = ws.reduce((a, w) => a + w.shape[0]!, 0);
  const n = ws.reduce((a, w) => a + w.data.length, 0);
  const data = first.dtype === 'f32' ? new Float32Array(n) : new Uint16Array(n);
  let off = 0;
  for (const w of ws) {
    data.set(w.data, off);
    off += w.data.length;
  }
  return { name, dtype: first.dtype, shape: [rows, ...inner], data };
}
