/**
 * Weights resident on the GPU. Storage dtypes: f32; f16 (IEEE half, 2 per u32 word, read with unpack2x16float — no
 * shader-f16 needed); bf16 (2 per u32 word, widened by a shift). Kernels accumulate in f32 whatever the storage.
 * A bf16 checkpoint stays bf16 on the GPU (exact, half the memory of f32); f32 weights can be stored as f16 on request.
 */
import type { Weight } from '../../tensor/weight.js';
import { bf16ArrayToF32, f32ArrayToF16 } from '../../tensor/dtype.js';
import type { GpuContext } from './context.js';

export type GpuWeightDType = 'f32' | 'f16' | 'bf16';

export interface GpuWeight {
  readonly buffer: GPUBuffer;
  readonly dtype: GpuWeightDType;
  readonly shape: readonly number[];
  readonly name: string;
}

export interface UploadOptions {
  /** Store f32 matrices as f16 (vectors — norms, biases — stay f32). */
  f16?: boolean;
}

/** Upload one weight (matrices may be stored as f16; 1-D weights always stay in their dtype or f32). */
export function uploadWeight(ctx: GpuContext, w: Weight, opts: UploadOptions = {}): GpuWeight {
  if (w.dtype === 'bf16') return { buffer: ctx.createStatic(w.data, w.name), dtype: 'bf16', shape: w.shape, name: w.name };
  const f32 = w.data as Float32Array;
  if (opts.f16 && w.shape.length >= 2) {
    return { buffer: ctx.createStatic(f32ArrayToF16(f32), w.name), dtype: 'f16', shape: w.shape, name: w.name };
  }
  return { buffer: ctx.createStatic(f32, w.name), dtype: 'f32', shape: w.shape, name: w.name };
}

/** Upload plain f32 values (norm weights, biases, sinks, correction biases). */
export function uploadF32(ctx: GpuContext, data: Float32Array, name: string, shape: readonly number[] = [data.length]): GpuWeight {
  return { buffer: ctx.createStatic(data, name), dtype: 'f32', shape, name };
}

/**
 * Stack same-shaped weights (one per expert) into one [n, ...shape] buffer of one dtype (bf16 if all are bf16,
 * else f32 or f16 as asked), so one dispatch can reach every expert.
 */
export function uploadStacked(ctx: GpuContext, ws: readonly Weight[], name: string, opts: UploadOptions = {}): GpuWeight {
  if (ws.length === 0) throw new Error(`uploadStacked ${name}: no weights`);
  const shape = ws[0]!.shape;
  const per = shape.reduce((a, b) => a * b, 1);
  for (const w of ws) if (w.shape.join() !== shape.join()) throw new Error(`uploadStacked ${name}: ${w.name} has shape [${w.shape}], expected [${shape}]`);
  const allBf16 = ws.every((w) => w.dtype === 'bf16');
  if (allBf16) {
    const data = new Uint16Array(per * ws.length);
    ws.forEach((w, i) => data.set(w.data as Uint16Array, i * per));
    return { buffer: ctx.createStatic(data, name), dtype: 'bf16', shape: [ws.length, ...shape], name };
  }
  const data = new Float32Array(per * ws.length);
  ws.forEach((w, i) => data.set(w.dtype === 'f32' ? (w.data as Float32Array) : bf16ArrayToF32(w.data as Uint16Array), i * per));
  if (opts.f16) return { buffer: ctx.createStatic(f32ArrayToF16(data), name), dtype: 'f16', shape: [ws.length, ...shape], name };
  return { buffer: ctx.createStatic(data, name), dtype: 'f32', shape: [ws.length, ...shape], name };
}
