/**
 * Declarative config.json validation: each architecture file declares the keys it reads (type, range, and which
 * values it supports), and `validateConfig` checks a config against that declaration *before* a spec is built or
 * anything is allocated. Every error is a UserError naming the key, the value and what was expected, e.g.
 *   config.json: num_experts_per_tok must be an integer in [1, num_local_experts=8], got 0
 *   config.json: attention_bias=true is not supported for olmoe
 *
 * Rules of the JSON types (what transformers would accept, minus what silently goes wrong here):
 * - numbers must be finite JSON numbers ("1e-5" as a string is an error), integers must be integral;
 * - booleans must be JSON booleans (`"false"` is an error: Boolean("false") is true);
 * - `null` means "absent" (transformers' `None`) and takes the default, unless the rule says `required`.
 * Keys no architecture reads (architectures, transformers_version, …) are ignored. The per-key audit of the
 * transformers modeling files that these declarations come from is docs/config-audit.md.
 *
 * Sanity bounds (documented limits, far above any published MoE; they exist so a config claiming 1e9 layers or a
 * 2^40 vocabulary is refused before any array is sized from it):
 */
import { UserError } from '../util/errors.js';
import type { Config } from '../io/checkpoint.js';

export const LIMITS = {
  /** DeepSeek-V3 has 61, the largest published MoEs < 200. */
  layers: 1024,
  /** 2^24 token ids (largest published vocabularies ≈ 262k). */
  vocab: 1 << 24,
  /** hidden / intermediate sizes (DeepSeek-V3 hidden 7168, FFN 18432). */
  width: 1 << 17,
  heads: 1024,
  headDim: 1024,
  /** Routed experts per layer (DeepSeek-V3: 256). */
  experts: 4096,
  /** max_position_embeddings: 2^24 (10M-token contexts exist). */
  positions: 1 << 24,
} as const;

/** An inclusive bound: a number, or the name of another integer key (its validated value, or its default). */
export type Bound = number | { key: string; offset?: number };

interface Common {
  /** An error when the key is absent or null. */
  required?: boolean;
  /**
   * Values this implementation does not support (the key is known and read by transformers, but we would compute
   * something else): a non-null value for which `supported` returns false is refused by name.
   */
  supported?: (v: unknown) => boolean;
  /** Appended to the "is not supported" message. */
  why?: string;
}

export type KeyRule = Common & (
  | { type: 'int'; min?: Bound; max?: Bound; default?: number }
  /** gt/lt: exclusive bounds; min/max: inclusive. */
  | { type: 'number'; gt?: number; min?: number; max?: number; lt?: number; default?: number }
  | { type: 'bool'; default?: boolean }
  | { type: 'string'; oneOf?: readonly string[]; default?: string }
  /** A token id or a list of token ids (eos_token_id). */
  | { type: 'ids' }
  /** A list of integers in [min, max]. */
  | { type: 'int-list'; min?: Bound; max?: Bound }
  /** A list of strings from oneOf, `length` entries when given. */
  | { type: 'string-list'; oneOf: readonly string[]; length?: Bound }
  /** An object, checked by the builder (router JSON) or by `validateRope` (rope_parameters). */
  | { type: 'object' }
  /** Known and read by transformers, but with no effect on what we compute (training-only, generation, …). */
  | { type: 'ignored' }
);

export type ConfigSchema = Readonly<Record<string, KeyRule>>;

/** A cross-key check run after every key passed its own rule; throws a UserError. */
export type ConfigCheck = (cfg: Config, value: (key: string) => number | undefined) => void;

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v) ?? String(v));
const fail = (msg: string): never => { throw new UserError(`config.json: ${msg}`); };

/** The value of an own key of the config, undefined when absent or null. */
export function own(cfg: Config, key: string): unknown {
  if (!Object.hasOwn(cfg, key)) return undefined;
  const v = cfg[key];
  return v === null ? undefined : v;
}

function boundValue(b: Bound, value: (key: string) => number | undefined): { n: number; text: string } | undefined {
  if (typeof b === 'number') return { n: b, text: String(b) };
  const v = value(b.key);
  if (v === undefined) return undefined;
  const off = b.offset ?? 0;
  return { n: v + off, text: `${b.key}${off ? (off > 0 ? `+${off}` : String(off)) : ''}=${v + off}` };
}

function intRange(min: Bound | undefined, max: Bound | undefined, value: (key: string) => number | undefined): { lo: number; hi: number; text: string } {
  const lo = min === undefined ? { n: 0, text: '0' } : boundValue(min, value) ?? { n: 0, text: '0' };
  const hi = max === undefined ? undefined : boundValue(max, value);
  return { lo: lo.n, hi: hi?.n ?? Infinity, text: hi ? `[${lo.text}, ${hi.text}]` : `[${lo.text}, ∞)` };
}

function checkInt(key: string, v: unknown, min: Bound | undefined, max: Bound | undefined, value: (key: string) => number | undefined, what = key): number {
  const r = intRange(min, max, value);
  if (typeof v !== 'number' || !Number.isInteger(v) || v < r.lo || v > r.hi) {
    fail(`${what} must be an integer in ${r.text}, got ${show(v)}`);
  }
  return v as number;
}

function numberRange(rule: { gt?: number; min?: number; max?: number; lt?: number }): string {
  const lo = rule.gt !== undefined ? `(${rule.gt}` : rule.min !== undefined ? `[${rule.min}` : '(-∞';
  const hi = rule.lt !== undefined ? `${rule.lt})` : rule.max !== undefined ? `${rule.max}]` : '∞)';
  return `${lo}, ${hi}`;
}

/** A finite JSON number within the rule's bounds, else a UserError naming `what`. */
export function checkNumber(what: string, v: unknown, rule: { gt?: number; min?: number; max?: number; lt?: number }): number {
  const ok = typeof v === 'number' && Number.isFinite(v)
    && (rule.gt === undefined || v > rule.gt) && (rule.min === undefined || v >= rule.min)
    && (rule.max === undefined || v <= rule.max) && (rule.lt === undefined || v < rule.lt);
  if (!ok) fail(`${what} must be a finite number in ${numberRange(rule)}, got ${show(v)}`);
  return v as number;
}

/**
 * Check `cfg` against `schema` (then the cross-key `checks`). Integer keys are checked in declaration order, so a
 * bound naming another key (num_experts_per_tok ≤ num_local_experts) sees that key's validated value: declare the
 * referenced key first.
 */
export function validateConfig(cfg: Config, modelType: string, schema: ConfigSchema, checks: readonly ConfigCheck[] = []): void {
  if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg)) fail('must be a JSON object');
  const ints = new Map<string, number>();
  const value = (key: string): number | undefined => {
    if (ints.has(key)) return ints.get(key);
    const rule = Object.hasOwn(schema, key) ? schema[key] : undefined;
    return rule?.type === 'int' ? rule.default : undefined;
  };
  for (const key of Object.keys(schema)) {
    const rule = schema[key]!;
    const v = own(cfg, key);
    if (v === undefined) {
      if (rule.required) fail(`${key} is required for ${modelType} but missing`);
      continue;
    }
    switch (rule.type) {
      case 'int': ints.set(key, checkInt(key, v, rule.min, rule.max, value)); break;
      case 'number': checkNumber(key, v, rule); break;
      case 'bool': if (typeof v !== 'boolean') fail(`${key} must be true or false (a JSON boolean), got ${show(v)}`); break;
      case 'string':
        if (typeof v !== 'string') fail(`${key} must be a string, got ${show(v)}`);
        if (rule.oneOf && !rule.oneOf.includes(v as string)) fail(`${key} must be one of ${rule.oneOf.join(', ')} for ${modelType}, got ${show(v)}`);
        break;
      case 'ids': {
        const list = Array.isArray(v) ? v : [v];
        list.forEach((x, i) => checkInt(key, x, 0, LIMITS.vocab - 1, value, Array.isArray(v) ? `${key}[${i}]` : key));
        break;
      }
      case 'int-list':
        if (!Array.isArray(v)) fail(`${key} must be a list of integers, got ${show(v)}`);
        (v as unknown[]).forEach((x, i) => checkInt(key, x, rule.min, rule.max, value, `${key}[${i}]`));
        break;
      case 'string-list': {
        if (!Array.isArray(v)) fail(`${key} must be a list of strings, got ${show(v)}`);
        const list = v as unknown[];
        const len = rule.length === undefined ? undefined : boundValue(rule.length, value);
        if (len && list.length !== len.n) fail(`${key} must have ${len.text} entries, got ${list.length}`);
        list.forEach((x, i) => {
          if (typeof x !== 'string' || !rule.oneOf.includes(x)) fail(`${key}[${i}] must be one of ${rule.oneOf.join(', ')}, got ${show(x)}`);
        });
        break;
      }
      case 'object':
        if (typeof v !== 'object' || Array.isArray(v)) fail(`${key} must be a JSON object, got ${show(v)}`);
        break;
      case 'ignored': break;
    }
    if (rule.supported && !rule.supported(v)) fail(`${key}=${show(v)} is not supported for ${modelType}${rule.why ? ` (${rule.why})` : ''}`);
  }
  for (const check of checks) check(cfg, value);
}

/** A rule accepting only `value` (and null/absence): any other value is refused by name. */
export const onlyValue = (type: 'bool' | 'number' | 'int' | 'string', value: boolean | number | string, why?: string): KeyRule => {
  const supported = (v: unknown): boolean => v === value;
  switch (type) {
    case 'bool': return { type, default: value as boolean, supported, why };
    case 'number': return { type, default: value as number, supported, why };
    case 'int': return { type, default: value as number, supported, why };
    case 'string': return { type, default: value as string, supported, why };
  }
};

/** What an architecture declares about its config.json: the keys it reads and the cross-key checks. */
export interface ArchConfig {
  schema: ConfigSchema;
  checks: readonly ConfigCheck[];
}
