/** Text ↔ token ids through the model folder's tokenizer.json (Hugging Face tokenizers.js; we write no tokenizer). */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { UserError } from '../util/errors.js';
import { readJsonFile } from './read-file.js';
import { oneLine } from './safetensors.js';

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
  // Regular files only, size-capped (src/io/read-file.ts); a non-object (null, an array) is refused here, not deep
  // inside the tokenizers library.
  const readJson = (f: string): Record<string, unknown> => {
    const v = readJsonFile(f);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UserError(oneLine(`${f} is not a JSON object`));
    return v as Record<string, unknown>;
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
