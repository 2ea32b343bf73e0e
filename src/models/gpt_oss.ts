/** STUB — to be implemented. */
import type { ModelSpec } from './spec.js';
import type { Config } from '../io/checkpoint.js';
import { UserError } from '../util/errors.js';

export function gptOssSpec(_cfg: Config, _names: ReadonlySet<string>): ModelSpec {
  throw new UserError('gpt_oss is not implemented yet');
}
