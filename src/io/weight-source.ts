/**
 * What a model needs from a checkpoint: tensors by name, converted to Weights. Implemented by `Checkpoint` (a
 * folder on disk, Node) and `MemoryCheckpoint` (bytes already in memory, e.g. fetched by a web page); the model
 * and layer constructors take this interface so they bundle for a browser without Node's file system.
 */
import type { TensorInfo } from './safetensors.js';
import type { Weight } from '../tensor/weight.js';

/** A parsed config.json. */
export type Config = Record<string, unknown>;

export interface WeightOptions {
  /** Keep bf16 matrices as bf16 (the kernels read them directly); otherwise widen to f32. */
  keepBf16?: boolean;
  /** Expected shape; a mismatch is a UserError naming the tensor. */
  shape?: readonly number[];
}

export interface WeightSource {
  /** Where the tensors come from: a folder path, or a label (URL) for in-memory checkpoints. */
  readonly dir: string;
  /** Every tensor name. */
  names(): string[];
  has(name: string): boolean;
  /** dtype, shape and location of a tensor; a UserError when it is missing. */
  info(name: string): TensorInfo;
  /** Read a tensor as a Weight (f32, or bf16 when `keepBf16`), checking its shape when one is given. */
  weight(name: string, opts?: WeightOptions): Weight;
}
