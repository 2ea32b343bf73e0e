/**
 * Save a trainable model as a Hugging Face model folder: config.json (the caller's config object: the architecture's
 * fields, from which `models/registry.ts` specFor and transformers rebuild the model) and model.safetensors (every
 * parameter under its checkpoint name, plus router state that checkpoints carry as tensors, e.g. DeepSeek-V3's
 * `e_score_correction_bias`), in float32 or bfloat16. Each file is written to a temporary name and renamed, so a
 * crash never leaves a half-written file under the final name; the weights go first, config.json last.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../io/checkpoint.js';
import { writeFileAtomic } from '../../io/atomic-write.js';
import { writeSafetensorsStreaming, type StreamedTensor } from '../../io/safetensors-writer.js';
import { specFor } from '../../models/registry.js';
import { f32ToBf16 } from '../../tensor/dtype.js';
import { UserError } from '../../util/errors.js';
import type { FArray } from '../autograd/var.js';
import type { TrainableLM } from './trainable-lm.js';

export interface ExportOptions {
  /** Storage dtype of the weights (default f32). config.json is written as given (its `dtype` is the caller's). */
  dtype?: 'f32' | 'bf16';
  /**
   * Check that the inference loader builds exactly this model's spec from `config` and the written tensor names
   * (default true). Turn off for models whose routers the inference registry cannot describe (research routers).
   */
  verify?: boolean;
  /** safetensors `__metadata__` (default { format: 'pt' }). */
  metadata?: Record<string, string>;
}

export interface ExportResult {
  dir: string;
  tensors: number;
  bytes: number;
}

/** First path where two JSON-like values differ (undefined fields count as absent), or null. */
function firstDifference(a: unknown, b: unknown, path = 'spec'): string | null {
  if (a === b) return null;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) {
    return `${path}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(ra), ...Object.keys(rb)]);
  for (const k of keys) {
    if (ra[k] === undefined && rb[k] === undefined) continue;
    const d = firstDifference(ra[k], rb[k], `${path}.${k}`);
    if (d) return d;
  }
  return null;
}

function tensorOf(name: string, data: FArray | Float32Array, shape: readonly number[], dtype: 'f32' | 'bf16'): StreamedTensor {
  if (dtype === 'f32') {
    return {
      name, dtype: 'F32', shape,
      fill(dst, start) {
        const n = dst.length / 4;
        const out = new Float32Array(dst.buffer, dst.byteOffset, n);
        for (let i = 0; i < n; i++) out[i] = data[start + i]!;
      },
    };
  }
  return {
    name, dtype: 'BF16', shape,
    fill(dst, start) {
      const n = dst.length / 2;
      const out = new Uint16Array(dst.buffer, dst.byteOffset, n);
      for (let i = 0; i < n; i++) out[i] = f32ToBf16(data[start + i]!);
    },
  };
}

export function exportHuggingFace(lm: TrainableLM, config: Config, dir: string, opts: ExportOptions = {}): ExportResult {
  const dtype = opts.dtype ?? 'f32';
  const tensors: StreamedTensor[] = [];
  const names = new Set<string>();
  for (const [name, v] of lm.store.entries()) {
    tensors.push(tensorOf(name, v.data, v.shape, dtype));
    names.add(name);
  }
  for (const [name, values] of Object.entries(lm.state())) {
    if (names.has(name)) throw new Error(`router state ${name} collides with a parameter`);
    // Router state is kept in float32 whatever the weights' dtype (transformers keeps such buffers in float32).
    tensors.push(tensorOf(name, Float32Array.from(values), [values.length], 'f32'));
    names.add(name);
  }
  tensors.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (opts.verify ?? true) {
    let spec;
    try {
      spec = specFor(config, names);
    } catch (e) {
      throw new UserError(`export: config.json does not describe this model (${e instanceof Error ? e.message : String(e)})`);
    }
    const d = firstDifference(spec, lm.spec);
    if (d) throw new UserError(`export: config.json describes a different model than the one being saved (${d})`);
  }
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
  let bytes = 0;
  writeSafetensorsStreaming(join(dir, 'model.safetensors'), tensors, opts.metadata ?? { format: 'pt' }, (_done, total) => { bytes = total; });
  writeFileAtomic(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  return { dir, tensors: tensors.length, bytes };
}
