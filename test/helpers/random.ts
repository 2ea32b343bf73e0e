/** Seeded random test data for the GPU tests. */
import { seededUniform } from '../../src/train/model/rng.js';
import { randomF32 } from '../backend/ref.js';

/** n values uniform in [−scale, scale) from the engine's seeded PRNG `seededUniform(seed)`. */
export function seededF32(n: number, seed: number, scale = 1): Float32Array {
  return randomF32(n, seededUniform(seed), scale);
}
