/** STUB — to be implemented. */
import type { ModelSpec } from './spec.js';
import type { Config } from '../io/checkpoint.js';
import { UserError } from '../util/errors.js';

export function deepseekV3Spec(_cfg: Config, _names: ReadonlySet<string>): ModelSpec {
  throw new UserError('deepseek_v3 is not implemented yet');
}
