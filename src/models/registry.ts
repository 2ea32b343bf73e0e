/**
 * model_type → config declaration + spec builder. Adding an architecture = one file beside this one + one line here.
 * `specFor` validates the config against the architecture's declared keys (config-schema.ts) before building
 * anything, and checks that the checkpoint holds every layer the config claims before any weight is read.
 */
import type { Config } from '../io/checkpoint.js';
import type { ModelSpec } from './spec.js';
import { UserError } from '../util/errors.js';
import { validateConfig, type ArchConfig } from './config-schema.js';
import { mixtralConfig, mixtralSpec } from './mixtral.js';
import { qwen2MoeConfig, qwen2MoeSpec } from './qwen2_moe.js';
import { qwen3MoeConfig, qwen3MoeSpec } from './qwen3_moe.js';
import { olmoeConfig, olmoeSpec } from './olmoe.js';
import { granitemoeConfig, granitemoeSpec } from './granitemoe.js';
import { phimoeConfig, phimoeSpec } from './phimoe.js';
import { deepseekV2Config, deepseekV2Spec } from './deepseek_v2.js';
import { deepseekV3Config, deepseekV3Spec } from './deepseek_v3.js';
import { gptOssConfig, gptOssSpec } from './gpt_oss.js';
import { switchyardMoeConfig, switchyardMoeSpec } from './switchyard_moe.js';

export type SpecBuilder = (cfg: Config, names: ReadonlySet<string>) => ModelSpec;

interface Architecture extends ArchConfig {
  build: SpecBuilder;
}

/** A Map, not an object literal: "__proto__", "constructor", "toString" must not resolve to anything. */
const architectures = new Map<string, Architecture>([
  ['mixtral', { build: mixtralSpec, ...mixtralConfig }],
  ['qwen2_moe', { build: qwen2MoeSpec, ...qwen2MoeConfig }],
  ['qwen3_moe', { build: qwen3MoeSpec, ...qwen3MoeConfig }],
  ['olmoe', { build: olmoeSpec, ...olmoeConfig }],
  ['granitemoe', { build: granitemoeSpec, ...granitemoeConfig }],
  ['phimoe', { build: phimoeSpec, ...phimoeConfig }],
  ['deepseek_v2', { build: deepseekV2Spec, ...deepseekV2Config }],
  ['deepseek_v3', { build: deepseekV3Spec, ...deepseekV3Config }],
  ['gpt_oss', { build: gptOssSpec, ...gptOssConfig }],
  ['switchyard_moe', { build: switchyardMoeSpec, ...switchyardMoeConfig }],
]);

export function supportedModelTypes(): string[] {
  return [...architectures.keys()].sort();
}

/** The declared config keys of a model type (tests, docs). */
export function archConfigFor(modelType: string): ArchConfig | undefined {
  return architectures.get(modelType);
}

const LAYER_RE = /^model\.layers\.(\d+)\./;

/**
 * The checkpoint must hold tensors of every layer the config claims: a config saying 1000 layers over a 2-layer
 * checkpoint is refused here, naming the first missing layer, before any per-layer structure is built or read.
 * (An empty name set — a model not saved yet, see train/model/config.ts — has nothing to check.)
 */
function checkLayersPresent(L: number, names: ReadonlySet<string>): void {
  if (names.size === 0) return;
  const present = new Set<number>();
  for (const n of names) {
    const m = LAYER_RE.exec(n);
    if (m) present.add(Number(m[1]));
  }
  for (let i = 0; i < L; i++) {
    if (!present.has(i)) {
      throw new UserError(`config.json: num_hidden_layers=${L}, but the checkpoint is missing layer ${i} (no model.layers.${i}.* tensors; it holds ${present.size} layer${present.size === 1 ? '' : 's'})`);
    }
  }
}

export function specFor(cfg: Config, names: ReadonlySet<string>): ModelSpec {
  const mt = Object.hasOwn(cfg, 'model_type') ? cfg['model_type'] : undefined;
  if (typeof mt !== 'string') throw new UserError(`config.json has no model_type (supported: ${supportedModelTypes().join(', ')})`);
  const arch = architectures.get(mt);
  if (!arch) throw new UserError(`config.json: unknown model_type ${JSON.stringify(mt)} (supported: ${supportedModelTypes().join(', ')})`);
  validateConfig(cfg, mt, arch.schema, arch.checks);
  checkLayersPresent(cfg['num_hidden_layers'] as number, names);
  return arch.build(cfg, names);
}
