/**
 * Train a byte-level BPE tokenizer with Hugging Face's `tokenizers` (the official Node binding of the Rust library)
 * and save it as tokenizer.json + tokenizer_config.json, the files `src/io/tokenizer.ts` loads with tokenizers.js.
 *
 * The binding's `Tokenizer.train(files)` takes no trainer options: it runs the BPE trainer's defaults (vocabulary
 * 30000, no special tokens, an initial alphabet of only the characters seen). So we train with those defaults and
 * then cut the result down: BPE merges are ordered and each merge only uses the alphabet and earlier merges, so the
 * first M merges with the tokens they produce form a valid smaller BPE (exactly what the trainer would have produced
 * with a vocabulary limit: the greedy merge sequence does not depend on the limit). The saved vocabulary is
 *
 *   ids 0..k-1          the special tokens, in the order given (default: just `<|endoftext|>` = 0)
 *   ids k..k+255        the full byte-level alphabet in byte order (byte b → id k + b), so any text encodes
 *   ids k+256..V-1      merge products, in merge order
 *
 * Pre-tokenizer: ByteLevel without a prefix space (GPT-2's regex split), decoder: ByteLevel, no normalizer, no
 * post-processor: `decode(encode(text)) === text` for every string. tokenizer_config.json turns off tokenizers.js'
 * `clean_up_tokenization_spaces` (on by default there), which would otherwise rewrite " ." to "." on decode.
 *
 * Training is deterministic: the trainer counts words (a sum, independent of thread scheduling) and breaks ties in
 * pair counts by token ids, which are assigned in a fixed order.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer as RustTokenizer, BPE, byteLevelPreTokenizer } from 'tokenizers';
import { writeFileAtomic } from '../io/atomic-write.js';

export const END_OF_TEXT = '<|endoftext|>';
/** Vocabulary of the shipped default model's tokenizer. */
export const DEFAULT_VOCAB_SIZE = 4096;

export interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** The subset of the tokenizer.json schema this module writes. */
export interface TokenizerJson {
  version: string;
  truncation: null;
  padding: null;
  added_tokens: AddedTokenJson[];
  normalizer: null;
  pre_tokenizer: { type: 'ByteLevel'; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean };
  post_processor: null;
  decoder: { type: 'ByteLevel'; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean };
  model: {
    type: 'BPE';
    dropout: null;
    unk_token: null;
    continuing_subword_prefix: null;
    end_of_word_suffix: null;
    fuse_unk: boolean;
    byte_fallback: boolean;
    ignore_merges: boolean;
    vocab: Record<string, number>;
    merges: [string, string][];
  };
}

export interface TokenizerConfigJson {
  tokenizer_class: string;
  bos_token: string;
  eos_token: string;
  clean_up_tokenization_spaces: boolean;
  add_prefix_space: boolean;
  [key: string]: unknown;
}

export interface TrainTokenizerOptions {
  /** Total vocabulary including special tokens and the 256 byte tokens (default 4096). */
  vocabSize?: number;
  /** Special tokens, given ids 0, 1, … in this order (default `[END_OF_TEXT]`). The first is also bos/eos. */
  specialTokens?: readonly string[];
}

export interface TrainedTokenizer {
  tokenizer: TokenizerJson;
  config: TokenizerConfigJson;
  /** Actual vocabulary size (smaller than asked when the text ran out of pairs to merge). */
  vocabSize: number;
  /** Number of merges kept. */
  merges: number;
  /** Special token → id. */
  specialTokens: Record<string, number>;
}

/**
 * GPT-2's byte → printable character table used by the ByteLevel pre-tokenizer and decoder: printable Latin-1 bytes
 * map to themselves, the other 68 bytes to U+0100 onwards in byte order. Index = byte value.
 */
export function byteLevelAlphabet(): string[] {
  const out: string[] = new Array<string>(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    out[b] = String.fromCodePoint(printable ? b : next++);
  }
  return out;
}

function parseMerges(raw: unknown): [string, string][] {
  if (!Array.isArray(raw)) throw new Error('trained tokenizer has no merges array');
  return raw.map((m: unknown) => {
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return [m[0], m[1]];
    if (typeof m === 'string') {
      const i = m.indexOf(' ');
      if (i > 0) return [m.slice(0, i), m.slice(i + 1)];
    }
    throw new Error(`unexpected merge entry ${JSON.stringify(m)}`);
  });
}

/**
 * Build a tokenizer.json from an ordered merge list: special tokens, the 256 byte tokens, then merge products in
 * order until the vocabulary reaches `vocabSize` (a merge whose product is already in the vocabulary adds no id).
 * Every kept merge's parts are checked to be in the vocabulary, so the result is a consistent BPE.
 */
export function buildByteLevelBpe(merges: readonly (readonly [string, string])[], vocabSize: number, specialTokens: readonly string[] = [END_OF_TEXT]): TrainedTokenizer {
  const alphabet = byteLevelAlphabet();
  const minSize = specialTokens.length + alphabet.length;
  if (!Number.isSafeInteger(vocabSize) || vocabSize < minSize) throw new RangeError(`vocabulary size must be an integer ≥ ${minSize} (special tokens + 256 bytes), got ${vocabSize}`);
  if (new Set(specialTokens).size !== specialTokens.length || specialTokens.some((t) => t.length === 0)) throw new Error('special tokens must be distinct and non-empty');
  const vocab = new Map<string, number>();
  for (const t of specialTokens) vocab.set(t, vocab.size);
  for (const c of alphabet) {
    if (vocab.has(c)) throw new Error(`special token ${JSON.stringify(c)} collides with a byte token`);
    vocab.set(c, vocab.size);
  }
  const kept: [string, string][] = [];
  for (const [a, b] of merges) {
    if (vocab.size >= vocabSize) break;
    if (!vocab.has(a) || !vocab.has(b)) throw new Error(`merge ${JSON.stringify([a, b])} uses a token that no earlier merge produced`);
    const product = a + b;
    kept.push([a, b]);
    if (!vocab.has(product)) vocab.set(product, vocab.size);
  }
  const added_tokens: AddedTokenJson[] = specialTokens.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const byteLevel = { add_prefix_space: false, trim_offsets: true, use_regex: true };
  const tokenizer: TokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', ...byteLevel },
    post_processor: null,
    decoder: { type: 'ByteLevel', ...byteLevel },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges: kept,
    },
  };
  const first = specialTokens[0] ?? END_OF_TEXT;
  const config: TokenizerConfigJson = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: first,
    eos_token: first,
    clean_up_tokenization_spaces: false,
    add_prefix_space: false,
  };
  return { tokenizer, config, vocabSize: vocab.size, merges: kept.length, specialTokens: Object.fromEntries(specialTokens.map((t, i) => [t, i])) };
}

/**
 * Train a byte-level BPE on `texts` (each string is one document; they are written one after another to a temporary
 * file for the trainer) and cut it to `vocabSize`. Synchronous; a few seconds for a few megabytes.
 */
export function trainByteLevelBpe(texts: readonly string[], opts: TrainTokenizerOptions = {}): TrainedTokenizer {
  const vocabSize = opts.vocabSize ?? DEFAULT_VOCAB_SIZE;
  const specials = opts.specialTokens ?? [END_OF_TEXT];
  const tmp = mkdtempSync(join(tmpdir(), 'switchyard-bpe-'));
  try {
    const input = join(tmp, 'input.txt');
    // The trainer reads line by line; a newline between documents keeps their words apart.
    writeFileSync(input, texts.join('\n'));
    const tok = new RustTokenizer(BPE.empty());
    tok.setPreTokenizer(byteLevelPreTokenizer(false, true));
    tok.train([input]);
    const out = join(tmp, 'trained.json');
    tok.save(out, false);
    const trained = JSON.parse(readFileSync(out, 'utf8')) as { model?: { merges?: unknown } };
    return buildByteLevelBpe(parseMerges(trained.model?.merges), vocabSize, specials);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Write tokenizer.json and tokenizer_config.json into `dir` (created if missing), each atomically. */
export function saveTokenizer(dir: string, trained: Pick<TrainedTokenizer, 'tokenizer' | 'config'>): void {
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(join(dir, 'tokenizer.json'), JSON.stringify(trained.tokenizer));
  writeFileAtomic(join(dir, 'tokenizer_config.json'), `${JSON.stringify(trained.config, null, 2)}\n`);
}
