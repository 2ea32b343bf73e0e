/** model_type → spec builder. Adding an architecture = one file beside this one + one line here. */
import type { Config } from '../io/checkpoint.js';
import type { ModelSpec } from './spec.js';
import { UserError } from '../util/errors.js';
import { mixtralSpec } from './mixtral.js';
import { qwen2MoeSpec } from './qwen2_moe.js';
import { qwen3MoeSpec } from './qwen3_moe.js';
import { olmoeSpec } from './olmoe.js';
import { granitemoeSpec } from './granitemoe.js';
import { phimoeSpec } from './phimoe.js';
import { deepseekV2Spec } from './deepseek_v2.js';
import { deepseekV3Spec } from './deepseek_v3.js';
import { gptOssSpec } from './gpt_oss.js';
import { switchyardMoeSpec } from './switchyard_moe.js';

export type SpecBuilder = (cfg: Config, names: ReadonlySet<string>) => ModelSpec;

const builders: Record<string, SpecBuilder> = {
  mixtral: mixtralSpec,
  qwen2_moe: qwen2MoeSpec,
  qwen3_moe: qwen3MoeSpec,
  olmoe: olmoeSpec,
  granitemoe: granitemoeSpec,
  phimoe: phimoeSpec,
  deepseek_v2: deepseekV2Spec,
  deepseek_v3: deepseekV3Spec,
  gpt_oss: gptOssSpec,
  switchyard_moe: switchyardMoeSpec,
};

export function supportedModelTypes(): string[] {
  return Object.keys(builders).sort();
}

export function specFor(cfg: Config, names: ReadonlySet<string>): ModelSpec {
  const mt = cfg['model_type'];
  if (typeof mt !== 'string') throw new UserError(`config.json has no model_type (supported: ${supportedModelTypes().join(', ')})`);
  const b = builders[mt];
  if (!b) throw new UserError(`unknown model_type "${mt}" (supported: ${supportedModelTypes().join(', ')})`);
  return b(cfg, names);
}
