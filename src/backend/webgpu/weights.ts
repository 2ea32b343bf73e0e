/**
 * Weights resident on the GPU. Storage dtypes: f32; f16 (IEEE half, 2 per u32 word, read with unpack2x16float — no
 * shader-f16 needed); bf16 (2 per u32 word, widened by a shift). Kernels accumulate in f32 whatever the storage.
 * A bf16 checkpoint stays bf16 on the GPU (exact, half the memory of f32; tensor cores read it through an f16
 * staging tile, coop-gemm.ts). On request (`--f16`) matrices of either dtype are stored as f16. bf16 → f16 keeps every value in
 * [6.1e-5, 65504] exactly (f16 has more mantissa bits) and rounds smaller ones to f16 subnormals (absolute error
 * ≤ 3e-8); a matrix with a value beyond ±65504 cannot be stored as f16 and is refused with a UserError.
 */
import type { Weight } from '../../tensor/weight.js';
import { bf16ArrayToF32, f32ArrayToF16 } from '../../tensor/dtype.js';
import type { GpuContext } from './context.js';
import { UserError } from '../../util/errors.js';

export type GpuWeightDType = 'f32' | 'f16' | 'bf16';

export interface GpuWeight {
  readonly buffer: GPUBuffer;
  readonly dtype: GpuWeightDType;
  readonly shape: readonly number[];
  readonly name: string;
}

export interface UploadOptions {
  /** Store matrices (f32 or bf16) as f16 (vectors — norms, biases — stay in their dtype or f32). */
  f16?: boolean;
}

/** f32 values → f16 bits, refusing values that overflow f16 (they would become ±∞). */
function toF16(data: Float32Array, name: string): Uint16Array {
  const h = f32ArrayToF16(data);
  for (let i = 0; i < h.length; i++) {
    if ((h[i]! & 0x7c00) === 0x7c00 && Number.isFinite(data[i]!)) {
      throw new UserError(`--f16: ${name} holds ${data[i]} (element ${i}), beyond f16's range of ±65504; run without --f16`);
    }
  }
  return h;
}

/** Upload one weight (matrices may be stored as f16; 1-D weights always stay in their dtype or f32). */
export function uploadWeight(ctx: GpuContext, w: Weight, opts: UploadOptions = {}): GpuWeight {
  if (opts.f16 && w.shape.length >= 2) {
    const f32 = w.dtype === 'bf16' ? bf16ArrayToF32(w.data as Uint16Array) : (w.data as Float32Array);
    return { buffer: ctx.createStatic(toF16(f32, w.name), w.name), dtype: 'f16', shape: w.shape, name: w.name };
  }
  if (w.dtype === 'bf16') return { buffer: ctx.createStatic(w.data, w.name), dtype: 'bf16', shape: w.shape, name: w.name };
  return { buffer: ctx.createStatic(w.data as Float32Array, w.name), dtype: 'f32', shape: w.shape, name: w.name };
}

/** Upload plain f32 values (norm weights, biases, sinks, correction biases). */
export function uploadF32(ctx: GpuContext, data: Float32Array, name: string, shape: readonly number[] = [data.length]): GpuWeight {
  return { buffer: ctx.createStatic(data, name), dtype: 'f32', shape, name };
}

/**
 * Stack same-shaped weights (one per expert) into one [n, ...shape] buffer of one dtype (f16 when asked, else bf16
 * if all are bf16, else f32), so one dispatch can reach every expert.
 */
export function uploadStacked(ctx: GpuContext, ws: readonly Weight[], name: string, opts: UploadOptions = {}): GpuWeight {
  if (ws.length === 0) throw new Error(`uploadStacked ${name}: no weights`);
  const shape = ws[0]!.shape;
  const per = shape.reduce((a, b) => a * b, 1);
  for (const w of ws) if (w.shape.join() !== shape.join()) throw new Error(`uploadStacked ${name}: ${w.name} has shape [${w.shape}], expected [${shape}]`);
  const allBf16 = ws.every((w) => w.dtype === 'bf16');
  if (allBf16 && !opts.f16) {
    const data = new Uint16Array(per * ws.length);
    ws.forEach((w, i) => data.set(w.data as Uint16Array, i * per));
    return { buffer: ctx.createStatic(data, name), dtype: 'bf16', shape: [ws.length, ...shape], name };
  }
  const data = new Float32Array(per * ws.length);
  ws.forEach((w, i) => data.set(w.dtype === 'f32' ? (w.data as Float32Array) : bf16ArrayToF32(w.data as Uint16Array), i * per));
  if (opts.f16) return { buffer: ctx.createStatic(toF16(data, name), name), dtype: 'f16', shape: [ws.length, ...shape], name };
  return { buffer: ctx.createStatic(data, name), dtype: 'f32', shape: [ws.length, ...shape], name };
}
