/** Text ↔ token ids through the model folder's tokenizer.json (Hugging Face tokenizers.js; we write no tokenizer). */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { UserError } from '../util/errors.js';

export interface TextCodec {
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
}

export function hasTokenizer(dir: string): boolean {
  return existsSync(join(dir, 'tokenizer.json'));
}

export function loadTokenizer(dir: string): TextCodec {
  const p = join(dir, 'tokenizer.json');
  if (!existsSync(p)) throw new UserError(`${dir} has no tokenizer.json: pass token ids with --prompt-ids instead`);
  const readJson = (f: string): Record<string, unknown> => {
    try {
      return JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new UserError(`${f} is not valid JSON (${(e as Error).message})`);
    }
  };
  const cfgPath = join(dir, 'tokenizer_config.json');
  return codecFromJson(readJson(p), existsSync(cfgPath) ? readJson(cfgPath) : {});
}

/** A codec from already-parsed tokenizer.json and tokenizer_config.json objects. */
export function codecFromJson(tokenizerJson: object, tokenizerConfig: object): TextCodec {
  const tok = new Tokenizer(tokenizerJson as Record<string, unknown>, tokenizerConfig as Record<string, unknown>);
  return {
    encode: (text) => tok.encode(text).ids,
    decode: (ids) => (ids.length ? tok.decode([...ids]) : ''),
  };
}
