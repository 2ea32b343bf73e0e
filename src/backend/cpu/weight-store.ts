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

/**
 * Run `fn` with weights allocated as ordinary typed arrays (garbage-collected once dropped) whatever allocator is
 * installed: for loaders that copy weights elsewhere (a GPU upload) and must not fill the WASM heap, which never
 * shrinks and is limited to 4 GiB.
 */
export function withPlainWeights<T>(fn: () => T): T {
  const saved = current;
  current = plain;
  try {
    return fn();
  } finally {
    current = saved;
  }
}
