/**
 * Where weight bytes live. By default in ordinary typed arrays; the WASM backend installs an allocator
 * that places them in its (shared) linear memory so SIMD kernels and workers read them in place.
 */
import type { WeightDType } from '../../tensor/weight.js';

export type WeightAllocator = (dtype: WeightDType, count: number) => Float32Array | Uint16Array;

const plain: WeightAllocator = (dtype, count) => (dtype === 'f32' ? new Float32Array(count) : new Uint16Array(count));
let current: WeightAllocator = plain;

export function setWeightAllocator(a: WeightAllocator | undefined): void {
  current = a ?? plain;
}

export function allocWeightData(dtype: WeightDType, count: number): Float32Array | Uint16Array {
  return current(dtype, count);
}
