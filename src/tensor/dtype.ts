/** Storage dtypes Switchyard understands, and conversions to float32. Compute is always float32. */

export type DType = 'f32' | 'f16' | 'bf16';

/** Element types a safetensors file may declare, with their byte sizes. */
export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<string, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, U16: 2, U32: 4, U64: 8,
  F8_E4M3: 1, F8_E5M2: 1,
};

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/** bfloat16 bits → float32 (exact). */
export function bf16ToF32(bits: number): number {
  u32buf[0] = bits << 16;
  return f32buf[0]!;
}

/** float32 → bfloat16 bits, round to nearest even (NaN stays NaN). */
export function f32ToBf16(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 0x40;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** IEEE half bits → float32 (exact). */
export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** float32 → IEEE half bits, round to nearest even. */
export function f32ToF16(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  let r = mant >>> 13;
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) {
    r++;
    if (r === 0x400) { r = 0; e++; if (e >= 31) return sign | 0x7c00; }
  }
  return sign | (e << 10) | r;
}

/** Widen a bf16 array to float32. */
export function bf16ArrayToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  const d = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < src.length; i++) d[i] = src[i]! << 16;
  return dst;
}

/** Widen an f16 array to float32 (table-driven). */
let f16Table: Float32Array | undefined;
export function f16ArrayToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) f16Table[i] = f16ToF32(i);
  }
  const t = f16Table;
  for (let i = 0; i < src.length; i++) dst[i] = t[src[i]!]!;
  return dst;
}

/** Round a float32 array to IEEE f16 bits (round to nearest even). */
export function f32ArrayToF16(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32ToF16(src[i]!);
  return out;
}

/**
 * Round float32 values through IEEE f16 in place (the values tensor-core kernels multiply: finite values beyond
 * ±65504 are clamped there first, as the kernels do). Returns `a`.
 */
export function roundToF16(a: Float32Array): Float32Array {
  for (let i = 0; i < a.length; i++) a[i] = f16ToF32(f32ToF16(Math.max(-65504, Math.min(65504, a[i]!))));
  return a;
}

/**
 * Index of the first NaN or ±Infinity among stored values given as raw bits, or -1 when all are finite. Integer
 * tests on the exponent field (all ones = Inf or NaN): f32 bits 0x7f800000, bf16 0x7f80, f16 0x7c00. Used at load
 * so that a poisoned weight is named at once instead of turning every logit into NaN (and argmax into token 0).
 */
export function firstNonFinite(bits: Uint32Array | Uint16Array, dtype: 'F32' | 'BF16' | 'F16'): number {
  const mask = dtype === 'F32' ? 0x7f800000 : dtype === 'BF16' ? 0x7f80 : 0x7c00;
  for (let i = 0; i < bits.length; i++) if ((bits[i]! & mask) === mask) return i;
  return -1;
}

/** "a NaN" / "+Infinity" / "-Infinity" for the stored value at `i` (for messages). */
export function nonFiniteKind(bits: Uint32Array | Uint16Array, dtype: 'F32' | 'BF16' | 'F16', i: number): string {
  const b = bits[i]!;
  const mantissa = dtype === 'F32' ? b & 0x7fffff : dtype === 'BF16' ? b & 0x7f : b & 0x3ff;
  if (mantissa !== 0) return 'a NaN';
  const negative = dtype === 'F32' ? b >>> 31 : b >>> 15;
  return negative ? '-Infinity' : '+Infinity';
}
