/**
 * Token data for language-model training: encode text once (optionally cached in a small safetensors file), then
 * draw batches of [B, S+1] windows — inputs are the first S tokens of a window, targets the last S.
 *
 * Training batches are random windows chosen by a counter-based generator: the windows of batch k depend only on
 * (seed, k), so the sampler's whole state is `{ seed, step }` (plain JSON). A run resumed from a saved state draws
 * exactly the batches the uninterrupted run would have drawn, and any batch can be recomputed on its own.
 * Validation walks the validation tokens in order with non-overlapping windows (stride S), so every target token is
 * scored once and the result does not depend on any seed.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { SafetensorsFile, encodeSafetensors } from '../io/safetensors.js';
import { FileSource } from '../io/file-source.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import { UserError } from '../util/errors.js';
import type { TextSplit } from './corpus.js';

/** Anything that turns text into token ids (e.g. `loadTokenizer(dir)` from src/io/tokenizer.ts). */
export interface TokenEncoder {
  encode(text: string): number[];
}

export interface TokenSplits {
  readonly train: Int32Array;
  readonly validation: Int32Array;
}

/**
 * Encode documents back to back, each followed by `eosId` (when not null), so a window that crosses a document
 * boundary sees the end-of-text token there. Empty documents are skipped.
 */
export function encodeDocuments(codec: TokenEncoder, docs: readonly string[], eosId: number | null): Int32Array {
  const parts: number[][] = [];
  let n = 0;
  for (const d of docs) {
    if (d.length === 0) continue;
    const ids = codec.encode(d);
    if (eosId !== null) ids.push(eosId);
    parts.push(ids);
    n += ids.length;
  }
  const out = new Int32Array(n);
  let p = 0;
  for (const ids of parts) {
    out.set(ids, p);
    p += ids.length;
  }
  return out;
}

export function encodeSplit(codec: TokenEncoder, split: TextSplit, eosId: number | null): TokenSplits {
  return { train: encodeDocuments(codec, split.train, eosId), validation: encodeDocuments(codec, split.validation, eosId) };
}

/**
 * A key naming one encoding: SHA-256 of the tokenizer (its tokenizer.json text), the end-of-text id and every
 * document of the split. A cache file whose key differs is stale.
 */
export function tokenCacheKey(tokenizerJson: string, split: TextSplit, eosId: number | null): string {
  const h = createHash('sha256');
  const field = (s: string): void => {
    h.update(`${Buffer.byteLength(s, 'utf8')}:`);
    h.update(s, 'utf8');
  };
  field('switchyard-tokens/1');
  field(tokenizerJson);
  field(String(eosId));
  for (const part of [split.train, split.validation]) {
    field(String(part.length));
    for (const d of part) field(d);
  }
  return h.digest('hex');
}

const CACHE_FORMAT = 'switchyard-tokens';

/** Write token ids to a safetensors file (int32 tensors `train` and `validation`, the key in the metadata). */
export function saveTokenCache(path: string, tokens: TokenSplits, key: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const bytes = encodeSafetensors(
    {
      train: { dtype: 'I32', shape: [tokens.train.length], data: tokens.train },
      validation: { dtype: 'I32', shape: [tokens.validation.length], data: tokens.validation },
    },
    { format: CACHE_FORMAT, key },
  );
  writeFileAtomic(path, bytes);
}

/** Read a token cache; null when the file is missing or was made for another key. */
export function loadTokenCache(path: string, key: string): TokenSplits | null {
  if (!existsSync(path)) return null;
  const f = new SafetensorsFile(new FileSource(path));
  try {
    if (f.metadata['format'] !== CACHE_FORMAT || f.metadata['key'] !== key) return null;
    const read = (name: string): Int32Array => {
      const info = f.info(name);
      if (info.dtype !== 'I32' || info.shape.length !== 1) throw new UserError(`${path}: ${name} is ${info.dtype}[${info.shape.join(', ')}], expected a 1-D I32 tensor`);
      const b = f.bytes(name);
      return new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4);
    };
    return { train: read('train'), validation: read('validation') };
  } finally {
    f.close();
  }
}

/** The cached tokens when `path` holds them for `key`, else `encode()` (then saved to `path` when given). */
export function loadOrEncodeTokens(path: string | null, key: string, encode: () => TokenSplits): TokenSplits {
  if (path) {
    const cached = loadTokenCache(path, key);
    if (cached) return cached;
  }
  const tokens = encode();
  if (path) saveTokenCache(path, tokens, key);
  return tokens;
}

// ---- batches -----------------------------------------------------------------------------------------------

export interface Batch {
  readonly batchSize: number;
  readonly seqLen: number;
  /** [B, S+1] row-major: each row is a window of S+1 consecutive tokens. */
  readonly tokens: Int32Array;
  /** [B, S]: the first S tokens of each window. */
  readonly inputs: Int32Array;
  /** [B, S]: the last S tokens of each window (inputs shifted by one). */
  readonly targets: Int32Array;
  /** Start of each window in the token array. */
  readonly offsets: readonly number[];
}

/** Cut the windows starting at `offsets` out of `data`. */
export function makeBatch(data: Int32Array, offsets: readonly number[], seqLen: number): Batch {
  const B = offsets.length;
  const S = seqLen;
  const tokens = new Int32Array(B * (S + 1));
  const inputs = new Int32Array(B * S);
  const targets = new Int32Array(B * S);
  offsets.forEach((off, b) => {
    if (!Number.isSafeInteger(off) || off < 0 || off + S + 1 > data.length) throw new RangeError(`window at ${off} of ${S + 1} tokens is outside ${data.length} tokens`);
    const w = data.subarray(off, off + S + 1);
    tokens.set(w, b * (S + 1));
    inputs.set(w.subarray(0, S), b * S);
    targets.set(w.subarray(1), b * S);
  });
  return { batchSize: B, seqLen: S, tokens, inputs, targets, offsets: [...offsets] };
}

/** 32-bit integer hash (xor-shift-multiply; full avalanche). */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** A uniform double in [0, 1) with 53 random bits, a pure function of (seed, step, row). */
export function counterUniform(seed: number, step: number, row: number): number {
  const h = mix32(mix32(mix32(seed >>> 0) ^ (step >>> 0)) ^ mix32(Math.floor(step / 2 ** 32) + 0x9e3779b9) ^ mix32(row ^ 0x85ebca6b));
  const hi = mix32(h ^ 0x68e31da4) >>> 5; // 27 bits
  const lo = mix32(h ^ 0xb5297a4d) >>> 6; // 26 bits
  return (hi * 2 ** 26 + lo) / 2 ** 53;
}

export interface SamplerOptions {
  batchSize: number;
  seqLen: number;
  /** Any integer; used modulo 2^32. */
  seed: number;
}

/** Everything needed to continue a sampler: JSON-serialisable. */
export interface SamplerState {
  readonly kind: 'random-windows';
  readonly seed: number;
  /** Index of the next batch to draw. */
  readonly step: number;
  readonly batchSize: number;
  readonly seqLen: number;
  /** Number of tokens sampled from, to catch a resume on different data. */
  readonly numTokens: number;
}

/** Random [B, S+1] windows of the training tokens; batch k is a pure function of (seed, k). */
export class BatchSampler {
  readonly batchSize: number;
  readonly seqLen: number;
  readonly seed: number;
  private nextStep = 0;

  constructor(readonly data: Int32Array, opts: SamplerOptions) {
    const { batchSize, seqLen, seed } = opts;
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new RangeError(`batch size must be a positive integer, got ${batchSize}`);
    if (!Number.isSafeInteger(seqLen) || seqLen < 1) throw new RangeError(`sequence length must be a positive integer, got ${seqLen}`);
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
    if (data.length < seqLen + 1) throw new UserError(`need at least ${seqLen + 1} training tokens for sequences of ${seqLen}, have ${data.length}`);
    this.batchSize = batchSize;
    this.seqLen = seqLen;
    this.seed = seed >>> 0;
  }

  /** Index of the next batch `next()` returns. */
  get step(): number {
    return this.nextStep;
  }

  /** The batch drawn at index `step` (does not move the sampler). */
  batchAt(step: number): Batch {
    if (!Number.isSafeInteger(step) || step < 0) throw new RangeError(`batch index must be a non-negative integer, got ${step}`);
    const starts = this.data.length - this.seqLen; // valid window starts: 0 .. N-S-1
    const offsets: number[] = [];
    for (let b = 0; b < this.batchSize; b++) offsets.push(Math.floor(counterUniform(this.seed, step, b) * starts));
    return makeBatch(this.data, offsets, this.seqLen);
  }

  next(): Batch {
    const b = this.batchAt(this.nextStep);
    this.nextStep++;
    return b;
  }

  state(): SamplerState {
    return { kind: 'random-windows', seed: this.seed, step: this.nextStep, batchSize: this.batchSize, seqLen: this.seqLen, numTokens: this.data.length };
  }

  /** A sampler continuing from `state` (checked against the data and, when given, the expected shape). */
  static fromState(data: Int32Array, state: SamplerState): BatchSampler {
    if (state.kind !== 'random-windows') throw new UserError(`unknown sampler state kind ${JSON.stringify(state.kind)}`);
    if (state.numTokens !== data.length) throw new UserError(`sampler state was saved for ${state.numTokens} training tokens, the data has ${data.length}: different corpus or tokenizer?`);
    if (!Number.isSafeInteger(state.step) || state.step < 0) throw new UserError(`sampler state has an invalid step ${state.step}`);
    const s = new BatchSampler(data, { batchSize: state.batchSize, seqLen: state.seqLen, seed: state.seed });
    s.nextStep = state.step;
    return s;
  }
}

/** Number of validation windows: non-overlapping, stride S, each S+1 tokens long. */
export function validationWindowCount(numTokens: number, seqLen: number): number {
  return numTokens < seqLen + 1 ? 0 : Math.floor((numTokens - 1) / seqLen);
}

/**
 * Validation batches in a fixed order: windows start at 0, S, 2S, …; batches hold `batchSize` windows (the last
 * one may hold fewer). `maxBatches` stops early (for a quick estimate during training).
 */
export function* validationBatches(data: Int32Array, opts: { batchSize: number; seqLen: number; maxBatches?: number }): Generator<Batch> {
  const { batchSize, seqLen } = opts;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new RangeError(`batch size must be a positive integer, got ${batchSize}`);
  if (!Number.isSafeInteger(seqLen) || seqLen < 1) throw new RangeError(`sequence length must be a positive integer, got ${seqLen}`);
  const windows = validationWindowCount(data.length, seqLen);
  const limit = opts.maxBatches ?? Infinity;
  let produced = 0;
  for (let w = 0; w < windows && produced < limit; w += batchSize, produced++) {
    const offsets: number[] = [];
    for (let b = w; b < Math.min(windows, w + batchSize); b++) offsets.push(b * seqLen);
    yield makeBatch(data, offsets, seqLen);
  }
}
