/** Open a Hugging Face model folder and build the model it describes. */
import { Checkpoint, readConfig, type Config } from '../io/checkpoint.js';
import { specFor } from './registry.js';
import { CausalLM, type LoadOptions } from './causal-lm.js';
import type { ModelSpec } from './spec.js';

export interface LoadedModel {
  config: Config;
  spec: ModelSpec;
  model: CausalLM;
}

export function loadModel(dir: string, opts: LoadOptions = {}): LoadedModel {
  const config = readConfig(dir);
  const ck = new Checkpoint(dir);
  try {
    const spec = specFor(config, new Set(ck.names()));
    const model = new CausalLM(spec, ck, opts);
    return { config, spec, model };
  } finally {
    ck.close();
  }
}
