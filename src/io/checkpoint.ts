/**
 * A Hugging Face model folder: config.json plus one or more safetensors files (model.safetensors, or shards listed
 * in model.safetensors.index.json). Tensors are read lazily by name and converted to Weights.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { SafetensorsFile, oneLine, type TensorInfo } from './safetensors.js';
import { FileSource } from './file-source.js';
import { UserError } from '../util/errors.js';
import { bf16ArrayToF32, f16ArrayToF32 } from '../tensor/dtype.js';
import { allocWeightData } from '../backend/cpu/weight-store.js';
import type { Weight, WeightDType } from '../tensor/weight.js';
import { shapeStr } from '../tensor/tensor.js';

export type Config = Record<string, unknown>;

function checkDir(dir: string): void {
  if (!existsSync(dir)) throw new UserError(oneLine(`model folder ${dir} does not exist`));
  if (!statSync(dir).isDirectory()) throw new UserError(oneLine(`${dir} is not a folder`));
}

function readJson(p: string): unknown {
  let text: string;
  try {
    text = readFileSync(p, 'utf8');
  } catch (e) {
    throw new UserError(oneLine(`cannot read ${p}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`));
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(oneLine(`${p} is not valid JSON (${e instanceof Error ? e.message : String(e)})`));
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function readConfig(dir: string): Config {
  checkDir(dir);
  const p = join(dir, 'config.json');
  if (!existsSync(p)) throw new UserError(oneLine(`${dir} has no config.json`));
  const cfg = readJson(p);
  if (!isPlainObject(cfg)) throw new UserError(oneLine(`${p} is not a JSON object`));
  return cfg;
}

export interface WeightOptions {
  /** Keep bf16 matrices as bf16 (the kernels read them directly); otherwise widen to f32. */
  keepBf16?: boolean;
  /** Expected shape; a mismatch is a UserError naming the tensor. */
  shape?: readonly number[];
}

export class Checkpoint {
  private readonly files: SafetensorsFile[] = [];
  private readonly where = new Map<string, SafetensorsFile>();

  constructor(readonly dir: string) {
    checkDir(dir);
    const index = join(dir, 'model.safetensors.index.json');
    let names: string[];
    /** tensor name → shard file, from the index (checked against the shards' own headers below). */
    let weightMap: Map<string, string> | undefined;
    if (existsSync(index)) {
      const idx = readJson(index);
      const wm = isPlainObject(idx) ? idx['weight_map'] : undefined;
      if (!isPlainObject(wm)) throw new UserError(oneLine(`${index} has no weight_map object`));
      weightMap = new Map();
      for (const [t, f] of Object.entries(wm)) {
        if (typeof f !== 'string' || f === '' || f === '.' || f === '..' || basename(f) !== f || f.includes('\\')) {
          throw new UserError(oneLine(`${index}: weight_map entry ${t} must name a shard file in the same folder, got ${JSON.stringify(f)}`));
        }
        weightMap.set(t, f);
      }
      names = [...new Set(weightMap.values())].sort();
      for (const n of names) {
        if (!existsSync(join(dir, n))) throw new UserError(oneLine(`${index} lists shard ${n}, which is not in ${dir}`));
      }
    } else {
      // Weights are model.safetensors or model-0000i-of-0000n.safetensors (what save_pretrained writes); other
      // .safetensors files in a model folder (reference outputs, gradients, token caches) are not weights.
      names = readdirSync(dir).filter((f) => /^model(-\d+-of-\d+)?\.safetensors$/.test(f)).sort();
    }
    if (names.length === 0) throw new UserError(oneLine(`${dir} has no model .safetensors files`));
    try {
      for (const n of names) {
        const f = new SafetensorsFile(new FileSource(join(dir, n)));
        this.files.push(f);
        for (const t of f.tensors.keys()) {
          const prev = this.where.get(t);
          if (prev) throw new UserError(oneLine(`tensor ${t} is in both ${prev.label} and ${f.label}`));
          this.where.set(t, f);
        }
      }
      if (weightMap) {
        for (const [t, n] of weightMap) {
          const f = this.where.get(t);
          if (!f) throw new UserError(oneLine(`${index} puts tensor ${t} in ${n}, but ${n} has no such tensor`));
          if (f.label !== join(dir, n)) throw new UserError(oneLine(`${index} puts tensor ${t} in ${n}, but it is in ${basename(f.label)}`));
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
    } else {
      const b = f.bytes(name);
      const raw = new Uint16Array(b.buffer, b.byteOffset, count);
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
