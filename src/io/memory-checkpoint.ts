/**
 * A checkpoint whose files are already in memory (a web page that fetched them, tests): config.json plus
 * model.safetensors, or model.safetensors.index.json plus the shards it lists (or model-0000i-of-0000n.safetensors
 * without an index). Same tensor reading and validation as the on-disk `Checkpoint` (SafetensorsWeights); no Node
 * imports, so it bundles for the browser. The byte arrays are used in place, not copied.
 */
import { SafetensorsFile, oneLine } from './safetensors.js';
import { BufferSource } from './byte-source.js';
import { UserError } from '../util/errors.js';
import { INDEX_FILE, SafetensorsWeights, WEIGHT_FILE_RE, parseConfig, parseIndex, parseJson, shardNames } from './safetensors-weights.js';
import type { Config } from './weight-source.js';

function utf8(bytes: Uint8Array, label: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new UserError(oneLine(`${label} is not valid UTF-8`));
  }
}

export class MemoryCheckpoint extends SafetensorsWeights {
  private readonly cfg?: Config;

  /**
   * @param files file name (no folder) → contents.
   * @param label where the files came from (a URL or folder), used as `dir` and in messages.
   */
  constructor(files: ReadonlyMap<string, Uint8Array>, label = '<memory>') {
    super(label);
    const at = (n: string): string => `${label.replace(/\/+$/, '')}/${n}`;
    const cfgBytes = files.get('config.json');
    if (cfgBytes) this.cfg = parseConfig(utf8(cfgBytes, at('config.json')), at('config.json'));
    const indexBytes = files.get(INDEX_FILE);
    let names: string[];
    let weightMap: Map<string, string> | undefined;
    if (indexBytes) {
      const index = at(INDEX_FILE);
      weightMap = parseIndex(parseJson(utf8(indexBytes, index), index), index);
      names = shardNames(weightMap);
      for (const n of names) {
        if (!files.has(n)) throw new UserError(oneLine(`${index} lists shard ${n}, which was not given`));
      }
    } else {
      names = [...files.keys()].filter((f) => WEIGHT_FILE_RE.test(f)).sort();
    }
    this.openShards(names, (n) => new SafetensorsFile(new BufferSource(files.get(n)!, at(n))), weightMap, at(INDEX_FILE));
  }

  /** The parsed config.json; a UserError when it was not among the files. */
  config(): Config {
    if (!this.cfg) throw new UserError(oneLine(`${this.dir} has no config.json`));
    return this.cfg;
  }
}
