/**
 * A Hugging Face model folder: config.json plus one or more safetensors files (model.safetensors, or shards listed
 * in model.safetensors.index.json). Tensors are read lazily by name and converted to Weights (the reading and
 * conversion live in SafetensorsWeights, shared with the in-memory MemoryCheckpoint; this file adds the Node parts:
 * folder discovery and positioned file reads).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SafetensorsFile, oneLine } from './safetensors.js';
import { FileSource } from './file-source.js';
import { MAX_JSON_BYTES, readTextFile } from './read-file.js';
import { UserError } from '../util/errors.js';
import { INDEX_FILE, SafetensorsWeights, WEIGHT_FILE_RE, parseConfig, parseIndex, parseJson, shardNames } from './safetensors-weights.js';
import type { Config } from './weight-source.js';

export type { Config, WeightOptions, WeightSource } from './weight-source.js';

function checkDir(dir: string): void {
  if (!existsSync(dir)) throw new UserError(oneLine(`model folder ${dir} does not exist`));
  if (!statSync(dir).isDirectory()) throw new UserError(oneLine(`${dir} is not a folder`));
}

/** A JSON file of the model folder: regular files only, at most MAX_JSON_BYTES (src/io/read-file.ts). */
function readText(p: string): string {
  return readTextFile(p, MAX_JSON_BYTES);
}

export function readConfig(dir: string): Config {
  checkDir(dir);
  const p = join(dir, 'config.json');
  if (!existsSync(p)) throw new UserError(oneLine(`${dir} has no config.json`));
  return parseConfig(readText(p), p);
}

export class Checkpoint extends SafetensorsWeights {
  constructor(dir: string) {
    super(dir);
    checkDir(dir);
    const index = join(dir, INDEX_FILE);
    let names: string[];
    /** tensor name → shard file, from the index (checked against the shards' own headers). */
    let weightMap: Map<string, string> | undefined;
    if (existsSync(index)) {
      weightMap = parseIndex(parseJson(readText(index), index), index);
      names = shardNames(weightMap);
      for (const n of names) {
        if (!existsSync(join(dir, n))) throw new UserError(oneLine(`${index} lists shard ${n}, which is not in ${dir}`));
      }
    } else {
      // Weights are model.safetensors or model-0000i-of-0000n.safetensors (what save_pretrained writes); other
      // .safetensors files in a model folder (reference outputs, gradients, token caches) are not weights.
      names = readdirSync(dir).filter((f) => WEIGHT_FILE_RE.test(f)).sort();
    }
    this.openShards(names, (n) => new SafetensorsFile(new FileSource(join(dir, n))), weightMap, index);
  }
}
