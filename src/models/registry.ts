/** model_type → spec builder. Adding an architecture = one file beside this one + one line here. */
import type { Config } from '../io/checkpoint.js';
import type { ModelSpec } from './spec.js';
import { UserError } from '../util/errors.js';
import { mixtralSpec } from './mixtral.js';

export type SpecBuilder = (cfg: Config, names: ReadonlySet<string>) => ModelSpec;

const builders: Record<string, SpecBuilder> = {
  mixtral: mixtralSpec,
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
