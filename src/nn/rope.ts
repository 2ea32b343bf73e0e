/**
 * Rotary embedding frequency tables from a config's `rope_parameters` (HF `rope_type`: default, linear, yarn,
 * longrope), computed the way transformers v5's `modeling_rope_utils` does, including its float32 rounding steps
 * (a 1-ulp difference in an inverse frequency becomes a visible angle error at long positions).
 */
import { applyRopeTable, ropeCosSinFrom } from '../backend/cpu/rope.js';
import { bf16ToF32, f32ToBf16 } from '../tensor/dtype.js';
import { UserError } from '../util/errors.js';

export interface RopeSpec {
  type: 'default' | 'linear' | 'yarn' | 'longrope';
  theta: number;
  /** Number of rotated dims per head (partial rotary uses fewer than headDim). */
  dim: number;
  interleaved: boolean;
  factor?: number;
  originalMaxPositions?: number;
  betaFast?: number;
  betaSlow?: number;
  mscale?: number;
  mscaleAllDim?: number;
  attentionFactor?: number;
  truncate?: boolean;
  /** longrope: per-frequency divisors for short (≤ originalMaxPositions) and long contexts, dim/2 each. */
  shortFactor?: number[];
  longFactor?: number[];
  /**
   * longrope, Phi-MoE only: cos/sin scale for short / long contexts (`short_mscale` / `long_mscale`), replacing the
   * generic longrope attention factor. Model files set these; `ropeSpecFromConfig` does not.
   */
  shortMscale?: number;
  longMscale?: number;
  /**
   * Precision of the inverse-frequency table. transformers keeps `inv_freq` as a floating buffer, so a model cast
   * to bfloat16 (config `dtype: bfloat16`) rounds it to bf16; matching the reference needs the same rounding.
   */
  freqDtype?: 'f32' | 'bf16';
}

export interface RopeTable {
  invFreq: Float32Array;
  /** Multiplies cos and sin (YaRN's / longrope's attention factor; 1 otherwise). */
  attentionScale: number;
  interleaved: boolean;
  /**
   * longrope: the table used instead when a call's largest position + 1 exceeds `threshold` (transformers picks
   * short or long factors per forward call from max(position_ids) + 1).
   */
  long?: { invFreq: Float32Array; attentionScale: number; threshold: number };
}

/** Parse HF `rope_parameters` (or legacy `rope_theta` + `rope_scaling`). */
export function ropeSpecFromConfig(cfg: Record<string, unknown>, dim: number, interleaved = false): RopeSpec {
  const p = (cfg['rope_parameters'] ?? cfg['rope_scaling'] ?? {}) as Record<string, unknown>;
  const theta = Number(p['rope_theta'] ?? cfg['rope_theta'] ?? 10000);
  const type = String(p['rope_type'] ?? p['type'] ?? 'default');
  if (type !== 'default' && type !== 'linear' && type !== 'yarn' && type !== 'longrope') {
    throw new UserError(`unsupported rope_type "${type}" (supported: default, linear, yarn, longrope)`);
  }
  const num = (k: string): number | undefined => (p[k] === undefined || p[k] === null ? undefined : Number(p[k]));
  const list = (k: string): number[] | undefined => {
    const v = p[k];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) throw new UserError(`rope_parameters.${k} must be a list of numbers`);
    return v as number[];
  };
  // transformers' standardize_rope_params: a top-level `original_max_position_embeddings` (Phi-3 style) wins over
  // the one inside rope_parameters; yarn/longrope fall back to max_position_embeddings.
  const topOrig = cfg['original_max_position_embeddings'];
  const originalMaxPositions = typeof topOrig === 'number' && (type === 'yarn' || type === 'longrope')
    ? topOrig
    : num('original_max_position_embeddings');
  const spec: RopeSpec = {
    type, theta, dim, interleaved,
    factor: num('factor'),
    originalMaxPositions,
    betaFast: num('beta_fast'),
    betaSlow: num('beta_slow'),
    mscale: num('mscale'),
    mscaleAllDim: num('mscale_all_dim'),
    attentionFactor: num('attention_factor'),
    truncate: p['truncate'] === undefined || p['truncate'] === null ? true : Boolean(p['truncate']),
    freqDtype: (cfg['dtype'] ?? cfg['torch_dtype']) === 'bfloat16' ? 'bf16' : 'f32',
  };
  if (type === 'longrope') {
    spec.shortFactor = list('short_factor');
    spec.longFactor = list('long_factor');
    if (!spec.shortFactor || !spec.longFactor) throw new UserError('rope_type longrope needs rope_parameters.short_factor and long_factor');
  }
  return spec;
}

const f = Math.fround;
const yarnMscale = (scale: number, m = 1): number => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);

export function ropeTable(spec: RopeSpec, maxPositions: number): RopeTable {
  const d = spec.dim;
  const half = d / 2;
  // transformers: base ** (arange(0, dim, 2).float() / dim), in float32.
  const posFreq = (i: number): number => f(spec.theta ** f((2 * i) / d));
  const invFreq = new Float32Array(half);
  let attentionScale = 1;
  let long: RopeTable['long'];
  if (spec.type === 'default') {
    for (let i = 0; i < half; i++) invFreq[i] = 1 / posFreq(i);
  } else if (spec.type === 'linear') {
    const fac = spec.factor ?? 1;
    for (let i = 0; i < half; i++) invFreq[i] = 1 / posFreq(i) / fac;
  } else if (spec.type === 'yarn') {
    // transformers v5 `_compute_yarn_parameters`: the explicit `factor` is used as given (only when it is missing
    // is it inferred as max_position_embeddings / original_max_position_embeddings); the correction range uses
    // original_max_position_embeddings (default: max_position_embeddings).
    const origMax = spec.originalMaxPositions ?? maxPositions;
    const factor = spec.factor ?? maxPositions / origMax;
    attentionScale = spec.attentionFactor ?? (spec.mscale && spec.mscaleAllDim
      ? yarnMscale(factor, spec.mscale) / yarnMscale(factor, spec.mscaleAllDim)
      : yarnMscale(factor));
    // `beta_fast or 32`: a 0 / missing value takes the default.
    const betaFast = spec.betaFast || 32;
    const betaSlow = spec.betaSlow || 1;
    const corrDim = (rot: number): number => (d * Math.log(origMax / (rot * 2 * Math.PI))) / (2 * Math.log(spec.theta));
    let low = corrDim(betaFast);
    let high = corrDim(betaSlow);
    if (spec.truncate !== false) { low = Math.floor(low); high = Math.ceil(high); }
    low = Math.max(low, 0);
    high = Math.min(high, d - 1);
    if (low === high) high += 0.001;
    // The ramp is a float32 tensor op with Python-float operands cast to float32.
    const lowF = f(low);
    const spanF = f(high - low);
    for (let i = 0; i < half; i++) {
      const pf = posFreq(i);
      const extra = f(1 / pf);
      const inter = f(1 / f(factor * pf));
      const ramp = Math.min(1, Math.max(0, f(f(i - lowF) / spanF)));
      const extraFactor = f(1 - ramp);
      invFreq[i] = f(inter * f(1 - extraFactor)) + f(extra * extraFactor);
    }
  } else {
    // transformers v5 `_compute_longrope_parameters`, plus the per-call short/long switch of `dynamic_rope_update`.
    const origMax = spec.originalMaxPositions ?? maxPositions;
    const factor = spec.factor ?? maxPositions / origMax;
    const generic = spec.attentionFactor ?? (factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(origMax)));
    const table = (ext: number[], which: string): Float32Array => {
      if (ext.length !== half) throw new UserError(`rope_parameters.${which} has ${ext.length} entries, expected ${half} (rotary dim / 2)`);
      const t = new Float32Array(half);
      for (let i = 0; i < half; i++) t[i] = 1 / f(f(ext[i]!) * posFreq(i));
      return t;
    };
    invFreq.set(table(spec.shortFactor ?? [], 'short_factor'));
    attentionScale = spec.shortMscale ?? generic;
    long = { invFreq: table(spec.longFactor ?? [], 'long_factor'), attentionScale: spec.longMscale ?? generic, threshold: origMax };
  }
  if (spec.freqDtype === 'bf16') {
    for (let i = 0; i < half; i++) invFreq[i] = bf16ToF32(f32ToBf16(invFreq[i]!));
    if (long) for (let i = 0; i < half; i++) long.invFreq[i] = bf16ToF32(f32ToBf16(long.invFreq[i]!));
  }
  return { invFreq, attentionScale, interleaved: spec.interleaved, long };
}

/** The inverse frequencies and attention scale a call at these positions uses (longrope: short or long factors). */
function factorsFor(table: RopeTable, positions: ArrayLike<number>): { invFreq: Float32Array; scale: number } {
  if (table.long) {
    let maxPos = -Infinity;
    for (let t = 0; t < positions.length; t++) if (positions[t]! > maxPos) maxPos = positions[t]!;
    // transformers picks short or long factors per forward call from max(position_ids) + 1.
    if (maxPos + 1 > table.long.threshold) return { invFreq: table.long.invFreq, scale: table.long.attentionScale };
  }
  return { invFreq: table.invFreq, scale: table.attentionScale };
}

/**
 * The (cos, sin) table for `positions`, shaped [T, half, 2] (T = positions.length): what `rope` rotates with, and
 * what device backends upload.
 */
export function ropeCosSin(table: RopeTable, positions: ArrayLike<number>): Float32Array {
  const f = factorsFor(table, positions);
  return ropeCosSinFrom(f.invFreq, f.scale, positions);
}

/** Rotate x[T, H, headDim] in place at the given absolute positions (rotated dims start at `offset` within a head). */
export function rope(table: RopeTable, x: Float32Array, T: number, H: number, headDim: number, positions: ArrayLike<number>, offset = 0): void {
  applyRopeTable(x, T, H, headDim, ropeCosSin(table, positions), table.invFreq.length, table.interleaved, offset);
}
