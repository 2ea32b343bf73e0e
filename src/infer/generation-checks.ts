/**
 * What `generate()` / `generateAsync()` check before any allocation or forward, and on every step:
 * - the options (a NaN temperature used to mean argmax, a negative one argmin-like sampling, maxNewTokens NaN no
 *   tokens at all, all silently);
 * - the prompts (equal non-empty lengths, integer ids inside the vocabulary);
 * - the context length: prompt + new tokens beyond the model's max_position_embeddings is refused unless the caller
 *   opts in with `allowLonger` (positions past the trained range make quality degrade silently);
 * - each step's logits row used for sampling (a NaN anywhere made argmax return token 0 forever).
 * Every failure is a one-line `GenerationError` (a UserError: the CLI prints it and exits 2).
 */
import { UserError } from '../util/errors.js';

/** Bad options or prompts for generation, or a model that produced non-finite logits. */
export class GenerationError extends UserError {
  override name = 'GenerationError';
}

/** The options these checks read (a subset of GenerateOptions, kept here to avoid an import cycle). */
export interface CheckedOptions {
  maxNewTokens: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  seed?: number;
  stopTokens?: readonly number[];
  onToken?: unknown;
  allowLonger?: boolean;
}

function show(v: unknown): string {
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (v === null || v === undefined || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return Array.isArray(v) ? 'an array' : typeof v;
}

function bad(name: string, need: string, got: unknown): never {
  throw new GenerationError(`generate: option ${name} must be ${need}, got ${show(got)}`);
}

/** Options, checked up front. `opts` may come from untyped JavaScript, so every field's type is checked too. */
export function checkGenerateOptions(opts: CheckedOptions): void {
  if (typeof opts !== 'object' || opts === null) throw new GenerationError(`generate: options must be an object, got ${show(opts)}`);
  const n = opts.maxNewTokens;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) bad('maxNewTokens', 'a positive integer', n);
  const t = opts.temperature;
  if (t !== undefined && (typeof t !== 'number' || !Number.isFinite(t) || t < 0)) bad('temperature', 'a finite number ≥ 0 (0 = greedy)', t);
  const p = opts.topP;
  if (p !== undefined && (typeof p !== 'number' || !(p > 0 && p <= 1))) bad('topP', 'a number in (0, 1]', p);
  const k = opts.topK;
  if (k !== undefined && (typeof k !== 'number' || !Number.isSafeInteger(k) || k < 0)) bad('topK', 'a non-negative integer (0 = no limit)', k);
  const s = opts.seed;
  if (s !== undefined && (typeof s !== 'number' || !Number.isSafeInteger(s))) bad('seed', 'a safe integer', s);
  const st = opts.stopTokens;
  if (st !== undefined) {
    if (!Array.isArray(st)) bad('stopTokens', 'an array of token ids', st);
    const i = st.findIndex((x) => typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0);
    if (i >= 0) bad(`stopTokens[${i}]`, 'a non-negative integer token id', st[i]);
  }
  if (opts.onToken !== undefined && typeof opts.onToken !== 'function') bad('onToken', 'a function', opts.onToken);
  if (opts.allowLonger !== undefined && typeof opts.allowLonger !== 'boolean') bad('allowLonger', 'a boolean', opts.allowLonger);
}

/**
 * Prompts and context length, checked before the KV cache is allocated or any forward runs (cost: one pass over
 * the prompt ids). `maxPositions` undefined = no limit known.
 */
export function checkPrompts(prompts: readonly (readonly number[])[], vocabSize: number, maxPositions: number | undefined, opts: CheckedOptions): void {
  if (!Array.isArray(prompts) || prompts.length === 0) throw new GenerationError('generate: need at least one prompt');
  const P = prompts[0]?.length ?? 0;
  if (P === 0) throw new GenerationError('generate: prompts must not be empty');
  for (const [b, p] of prompts.entries()) {
    if (p.length !== P) throw new GenerationError(`generate: prompts must have equal lengths (prompt 0 has ${P} tokens, prompt ${b} has ${p.length})`);
  }
  // The context length first: it needs no pass over the ids, so a huge prompt fails at once.
  const total = P + opts.maxNewTokens;
  if (maxPositions !== undefined && total > maxPositions && opts.allowLonger !== true) {
    throw new GenerationError(`the prompt (${P} tokens) + maxNewTokens (${opts.maxNewTokens}) = ${total} positions exceeds the model's context length (max_position_embeddings ${maxPositions}); shorten the prompt or generate fewer tokens, or pass allowLonger (--allow-longer) to run past the trained range`);
  }
  for (const [b, p] of prompts.entries()) {
    for (let i = 0; i < P; i++) {
      const t = p[i];
      if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t >= vocabSize) {
        throw new GenerationError(`generate: prompt ${b} token ${i} is ${show(t)}, not a token id of the vocabulary (0..${vocabSize - 1})`);
      }
    }
  }
}

/**
 * Throws when logits[offset .. offset + V) holds a NaN or ±Infinity: sampling from it would be meaningless (argmax of
 * a row with NaN returns 0 forever). One pass over V floats per sequence per step.
 */
export function checkLogitsRow(logits: Float32Array, offset: number, V: number, step: number, position: number, seq: number, batch: number): void {
  for (let i = 0; i < V; i++) {
    const x = logits[offset + i]!;
    // x - x is 0 for finite x and NaN for NaN and ±Infinity: one comparison covers both.
    if (x - x !== 0) {
      const what = Number.isNaN(x) ? 'NaN' : x > 0 ? '+Infinity' : '-Infinity';
      throw new GenerationError(`non-finite logits at generation step ${step} (position ${position}${batch > 1 ? `, sequence ${seq}` : ''}): token ${i} has logit ${what}; the model's weights or activations overflowed`);
    }
  }
}
