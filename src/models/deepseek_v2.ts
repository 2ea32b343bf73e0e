/** STUB — to be implemented. */
import type { ModelSpec } from './spec.js';
import type { Config } from '../io/checkpoint.js';
import { UserError } from '../util/errors.js';

export function deepseekV2Spec(_cfg: Config, _names: ReadonlySet<string>): ModelSpec {
  throw new UserError('deepseek_v2 is not implemented yet');
}
