/**
 * A Hugging Face model folder: config.json plus one or more safetensors files (model.safetensors, or shards listed
 * in model.safetensors.index.json). Tensors are read lazily by name and converted to Weights.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SafetensorsFile, type TensorInfo } from './safetensors.js';
import { FileSource } from './file-source.js';
import { UserError } from '../util/errors.js';
import { bf16ArrayToF32, f16ArrayToF32 } from '../tensor/dtype.js';
import { allocWeightData } from '../backend/cpu/weight-store.js';
import type { Weight, WeightDType } from '../tensor/weight.js';
import { shapeStr } from '../tensor/tensor.js';

export type Config = Record<string, unknown>;

export function readConfig(dir: string): Config {
  if (!existsSync(dir)) throw new UserError(`model folder ${dir} does not exist`);
  if (!statSync(dir).isDirectory()) throw new UserError(`${dir} is not a folder`);
  const p = join(dir, 'config.json');
  if (!existsSync(p)) throw new UserError(`${dir} has no config.json`);
  let cfg: unknown;
  try {
    cfg = JSON.parse(readFileSync(p, 'utf8'));
  } catch (e) {
    throw new UserError(`${p} is not valid JSON (${(e as Error).message})`);
  }
  if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg)) throw new UserError(`${p} is not a JSON object`);
  return cfg as Config;
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
    const index = join(dir, 'model.safetensors.index.json');
    let names: string[];
    if (existsSync(index)) {
      let idx: { weight_map?: Record<string, string> };
      try {
        idx = JSON.parse(readFileSync(index, 'utf8'));
      } catch (e) {
        throw new UserError(`${index} is not valid JSON (${(e as Error).message})`);
      }
      if (!idx.weight_map || typeof idx.weight_map !== 'object') throw new UserError(`${index} has no weight_map`);
      names = [...new Set(Object.values(idx.weight_map))].sort();
    } else {
      names = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.safetensors') && f !== 'io.safetensors' && f !== 'grads.safetensors').sort() : [];
    }
    if (names.length === 0) throw new UserError(`${dir} has no model .safetensors files`);
    try {
      for (const n of names) {
        const f = new SafetensorsFile(new FileSource(join(dir, n)));
        this.files.push(f);
        for (const t of f.tensors.keys()) this.where.set(t, f);
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
    if (!f) throw new UserError(`checkpoint ${this.dir} is missing tensor ${name}`);
    return f.info(name);
  }

  /** Read a tensor as a Weight (f32, or bf16 when `keepBf16`), checking its shape when one is given. */
  weight(name: string, opts: WeightOptions = {}): Weight {
    const info = this.info(name);
    if (opts.shape && (opts.shape.length !== info.shape.length || opts.shape.some((d, i) => d !== info.shape[i]))) {
      throw new UserError(`tensor ${name} has shape ${shapeStr(info.shape)}, expected ${shapeStr(opts.shape)}`);
    }
    const count = info.shape.reduce((a, b) => a * b, 1);
    const f = this.where.get(name)!;
    let dtype: WeightDType;
    let data: Float32Array | Uint16Array;
    switch (info.dtype) {
      case 'F32':
        dtype = 'f32';
        data = allocWeightData('f32', count);
        f.readInto(name, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        break;
      case 'BF16':
      case 'F16': {
        const raw = new Uint16Array(f.bytes(name).buffer, 0, count);
        if (info.dtype === 'BF16' && opts.keepBf16) {
          dtype = 'bf16';
          data = allocWeightData('bf16', count);
          data.set(raw);
        } else {
          dtype = 'f32';
          data = allocWeightData('f32', count);
          if (info.dtype === 'F16') f16ArrayToF32(raw, data as Float32Array);
          else bf16ArrayToF32(raw, data as Float32Array);
        }
        break;
      }
      default:
        throw new UserError(`tensor ${name} has dtype ${info.dtype}; weights must be F32, F16 or BF16`);
    }
    return { name, dtype, shape: info.shape, data };
  }

  close(): void {
    for (const f of this.files) f.close();
  }
}
