/**
 * Text + tokenizer → training and validation token ids. The default is the shipped corpus with the shipped
 * default model's tokenizer; a user's text files train a new byte-level BPE unless a tokenizer folder is given.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCorpusSplit, splitCorpus, type TextSplit } from '../data/corpus.js';
import { encodeSplit, loadOrEncodeTokens, tokenCacheKey, type TokenSplits } from '../data/token-dataset.js';
import { trainByteLevelBpe, END_OF_TEXT, type TokenizerJson, type TokenizerConfigJson } from '../data/train-tokenizer.js';
import { codecFromJson, loadTokenizer, type TextCodec } from '../io/tokenizer.js';
import { defaultModelDir } from '../models/default-model.js';
import { UserError } from '../util/errors.js';

export interface PreparedData {
  tokens: TokenSplits;
  codec: TextCodec;
  vocabSize: number;
  eosId: number;
  /** tokenizer.json / tokenizer_config.json contents to save beside the trained model. */
  tokenizerJson: TokenizerJson;
  tokenizerConfig: TokenizerConfigJson;
  source: string;
}

export interface DataOptions {
  /** Text files (one document each); default: the shipped corpus. */
  textFiles?: readonly string[];
  /** Folder with tokenizer.json to reuse; default: the default model's (shipped corpus) or a new BPE (own text). */
  tokenizerDir?: string;
  /** Vocabulary of a newly trained tokenizer. */
  vocabSize?: number;
  /** Token cache file (skip re-encoding on the next run). */
  cachePath?: string;
}

function readJson<T>(path: string): T {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (e) {
    throw new UserError(`${path}: ${(e as Error).message.split('\n')[0]}`);
  }
}

export function prepareData(o: DataOptions = {}): PreparedData {
  let split: TextSplit;
  let source: string;
  if (o.textFiles?.length) {
    const docs = o.textFiles.map((f) => {
      if (!existsSync(f)) throw new UserError(`text file ${f} does not exist`);
      return readFileSync(f, 'utf8');
    });
    split = splitCorpus(docs);
    source = o.textFiles.join(', ');
  } else {
    split = loadCorpusSplit();
    source = 'shipped corpus (Jane Austen, six novels)';
  }
  let tokDir = o.tokenizerDir;
  if (!tokDir && !o.textFiles?.length && o.vocabSize === undefined && existsSync(join(defaultModelDir(), 'tokenizer.json'))) tokDir = defaultModelDir();
  let tokenizerJson: TokenizerJson;
  let tokenizerConfig: TokenizerConfigJson;
  if (tokDir) {
    const p = join(tokDir, 'tokenizer.json');
    if (!existsSync(p)) throw new UserError(`${tokDir} has no tokenizer.json`);
    tokenizerJson = readJson<TokenizerJson>(p);
    const c = join(tokDir, 'tokenizer_config.json');
    tokenizerConfig = existsSync(c) ? readJson<TokenizerConfigJson>(c)
      : { tokenizer_class: 'PreTrainedTokenizerFast', bos_token: END_OF_TEXT, eos_token: END_OF_TEXT, clean_up_tokenization_spaces: false, add_prefix_space: false };
  } else {
    const t = trainByteLevelBpe(split.train, { vocabSize: o.vocabSize });
    tokenizerJson = t.tokenizer;
    tokenizerConfig = t.config;
  }
  const codec = tokDir ? loadTokenizer(tokDir) : codecFromJson(tokenizerJson, tokenizerConfig);
  const eosIds = codec.encode(END_OF_TEXT);
  const eosId = eosIds.length === 1 ? eosIds[0]! : 0;
  const vocabSize = vocabSizeOf(tokenizerJson);
  const key = tokenCacheKey(JSON.stringify(tokenizerJson), split, eosId);
  const tokens = loadOrEncodeTokens(o.cachePath ?? null, key, () => encodeSplit(codec, split, eosId));
  return { tokens, codec, vocabSize, eosId, tokenizerJson, tokenizerConfig, source };
}

function vocabSizeOf(t: TokenizerJson): number {
  const vocab = (t as unknown as { model?: { vocab?: Record<string, number> }; added_tokens?: { id: number }[] });
  let max = -1;
  for (const id of Object.values(vocab.model?.vocab ?? {})) max = Math.max(max, id);
  for (const a of vocab.added_tokens ?? []) max = Math.max(max, a.id);
  if (max < 0) throw new UserError('tokenizer.json has an empty vocabulary');
  return max + 1;
}
