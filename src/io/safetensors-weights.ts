/**
 * Tensors by name over a list of safetensors shards: the part of a checkpoint that does not care where the bytes
 * come from. `Checkpoint` (Node: a folder, files read lazily) and `MemoryCheckpoint` (bytes in memory: browser,
 * tests) subclass it. No Node imports here: this file is in the browser bundle.
 *
 * Weights are allocated through `allocWeightData` (src/backend/cpu/weight-store.ts): plain typed arrays unless the
 * WASM backend has installed its heap allocator (Node only; the browser bundle never loads that module).
 */
import { SafetensorsFile, oneLine, type TensorInfo } from './safetensors.js';
import { UserError } from '../util/errors.js';
import { bf16ArrayToF32, f16ArrayToF32, firstNonFinite, nonFiniteKind } from '../tensor/dtype.js';
import { allocWeightData } from '../backend/cpu/weight-store.js';
import type { Weight, WeightDType } from '../tensor/weight.js';
import { shapeStr } from '../tensor/tensor.js';
import type { Config, WeightOptions, WeightSource } from './weight-source.js';

/** Weight files in a model folder without an index: model.safetensors or model-0000i-of-0000n.safetensors. */
export const WEIGHT_FILE_RE = /^model(-\d+-of-\d+)?\.safetensors$/;
export const INDEX_FILE = 'model.safetensors.index.json';

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** JSON text → value; a UserError naming `label` when it does not parse. */
export function parseJson(text: string, label: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(oneLine(`${label} is not valid JSON (${e instanceof Error ? e.message : String(e)})`));
  }
}

/** A config.json's text → Config (must be a JSON object). */
export function parseConfig(text: string, label: string): Config {
  const cfg = parseJson(text, label);
  if (!isPlainObject(cfg)) throw new UserError(oneLine(`${label} is not a JSON object`));
  return cfg;
}

/**
 * A parsed model.safetensors.index.json → tensor name → shard file name. Shards must be plain file names in the
 * same folder (no path separators, not `.`/`..`).
 */
export function parseIndex(idx: unknown, label: string): Map<string, string> {
  const wm = isPlainObject(idx) ? idx['weight_map'] : undefined;
  if (!isPlainObject(wm)) throw new UserError(oneLine(`${label} has no weight_map object`));
  const weightMap = new Map<string, string>();
  for (const [t, f] of Object.entries(wm)) {
    if (typeof f !== 'string' || f === '' || f === '.' || f === '..' || f.includes('/') || f.includes('\\')) {
      throw new UserError(oneLine(`${label}: weight_map entry ${t} must name a shard file in the same folder, got ${JSON.stringify(f)}`));
    }
    weightMap.set(t, f);
  }
  return weightMap;
}

/** The shard file names an index lists, sorted and deduplicated. */
export function shardNames(weightMap: ReadonlyMap<string, string>): string[] {
  return [...new Set(weightMap.values())].sort();
}

/**
 * A weight with a NaN or ±Infinity is refused at load, naming the file, the tensor and the element: one such value
 * in a router or attention weight makes every logit NaN and greedy decoding emit token 0 forever. The scan runs over
 * the raw bits just read (integer compares, the data still warm in cache), never a second read of the file.
 */
function checkFinite(file: string, name: string, dtype: string, bits: Uint32Array | Uint16Array): void {
  const d = dtype as 'F32' | 'BF16' | 'F16';
  const i = firstNonFinite(bits, d);
  if (i >= 0) throw new UserError(oneLine(`${file}: tensor ${name} has ${nonFiniteKind(bits, d, i)} at element ${i}; the checkpoint is corrupt or was saved after a diverged training step`));
}

export class SafetensorsWeights implements WeightSource {
  private readonly files: SafetensorsFile[] = [];
  private readonly where = new Map<string, SafetensorsFile>();

  protected constructor(readonly dir: string) {}

  /**
   * Open the shards (`open(name)` per shard file name) and map every tensor to its shard: a tensor in two shards,
   * or an index entry that disagrees with the shards' own headers, is a UserError. On any error the shards opened
   * so far are closed.
   */
  protected openShards(names: readonly string[], open: (name: string) => SafetensorsFile, weightMap?: ReadonlyMap<string, string>, indexLabel = INDEX_FILE): void {
    if (names.length === 0) throw new UserError(oneLine(`${this.dir} has no model .safetensors files`));
    const shardOf = new Map<SafetensorsFile, string>();
    try {
      for (const n of names) {
        const f = open(n);
        this.files.push(f);
        shardOf.set(f, n);
        for (const t of f.tensors.keys()) {
          const prev = this.where.get(t);
          if (prev) throw new UserError(oneLine(`tensor ${t} is in both ${prev.label} and ${f.label}`));
          this.where.set(t, f);
        }
      }
      if (weightMap) {
        for (const [t, n] of weightMap) {
          const f = this.where.get(t);
          if (!f) throw new UserError(oneLine(`${indexLabel} puts tensor ${t} in ${n}, but ${n} has no such tensor`));
          if (shardOf.get(f) !== n) throw new UserError(oneLine(`${indexLabel} puts tensor ${t} in ${n}, but it is in ${shardOf.get(f)}`));
        }
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  names(): string[] {
    return [...this.where.keys()];
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  info(name: string): TensorInfo {
    const f = this.where.get(name);
    if (!f) throw new UserError(oneLine(`checkpoint ${this.dir} is missing tensor ${name}`));
    return f.info(name);
  }

  /** Read a tensor as a Weight (f32, or bf16 when `keepBf16`), checking its shape when one is given. */
  weight(name: string, opts: WeightOptions = {}): Weight {
    const info = this.info(name);
    if (opts.shape && (opts.shape.length !== info.shape.length || opts.shape.some((d, i) => d !== info.shape[i]))) {
      throw new UserError(oneLine(`tensor ${name} has shape ${shapeStr(info.shape)}, expected ${shapeStr(opts.shape)}`));
    }
    if (info.dtype !== 'F32' && info.dtype !== 'F16' && info.dtype !== 'BF16') {
      throw new UserError(oneLine(`tensor ${name} has dtype ${info.dtype}; weights must be F32, F16 or BF16`));
    }
    const count = info.shape.reduce((a, b) => a * b, 1);
    const f = this.where.get(name)!;
    let dtype: WeightDType;
    let data: Float32Array | Uint16Array;
    const readStraight = info.dtype === 'F32' || (info.dtype === 'BF16' && opts.keepBf16);
    if (readStraight) {
      // Stored as it will be used: read the bytes straight into the weight's (possibly WASM-heap) storage.
      dtype = info.dtype === 'F32' ? 'f32' : 'bf16';
      data = allocWeightData(dtype, count);
      f.readInto(name, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      checkFinite(f.label, name, info.dtype, dtype === 'f32' ? new Uint32Array(data.buffer, data.byteOffset, count) : (data as Uint16Array));
    } else {
      const b = f.bytes(name);
      const raw = new Uint16Array(b.buffer, b.byteOffset, count);
      checkFinite(f.label, name, info.dtype, raw);
      dtype = 'f32';
      data = allocWeightData('f32', count);
      if (info.dtype === 'F16') f16ArrayToF32(raw, data as Float32Array);
      else bf16ArrayToF32(raw, data as Float32Array);
    }
    return { name, dtype, shape: info.shape, data };
  }

  close(): void {
    for (const f of this.files) f.close();
  }
}
