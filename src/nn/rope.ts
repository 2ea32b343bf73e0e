/**
 * Rotary embedding frequency tables from a config's `rope_parameters` (HF `rope_type`: default, linear, yarn).
 */
import { applyRope } from '../backend/cpu/rope.js';
import { bf16ToF32, f32ToBf16 } from '../tensor/dtype.js';

export interface RopeSpec {
  type: 'default' | 'linear' | 'yarn';
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
  /**
   * Precision of the inverse-frequency table. transformers keeps `inv_freq` as a floating buffer, so a model cast
   * to bfloat16 (config `dtype: bfloat16`) rounds it to bf16; matching the reference needs the same rounding.
   */
  freqDtype?: 'f32' | 'bf16';
}

export interface RopeTable {
  invFreq: Float32Array;
  /** Multiplies cos and sin (YaRN's attention factor; 1 otherwise). */
  attentionScale: number;
  interleaved: boolean;
}

/** Parse HF `rope_parameters` (or legacy `rope_theta` + `rope_scaling`). */
export function ropeSpecFromConfig(cfg: Record<string, unknown>, dim: number, interleaved = false): RopeSpec {
  const p = (cfg['rope_parameters'] ?? cfg['rope_scaling'] ?? {}) as Record<string, unknown>;
  const theta = Number(p['rope_theta'] ?? cfg['rope_theta'] ?? 10000);
  const type = String(p['rope_type'] ?? p['type'] ?? 'default');
  if (type !== 'default' && type !== 'linear' && type !== 'yarn') throw new Error(`unsupported rope_type ${type}`);
  const num = (k: string): number | undefined => (p[k] === undefined || p[k] === null ? undefined : Number(p[k]));
  return {
    type, theta, dim, interleaved,
    factor: num('factor'),
    originalMaxPositions: num('original_max_position_embeddings'),
    betaFast: num('beta_fast'),
    betaSlow: num('beta_slow'),
    mscale: num('mscale'),
    mscaleAllDim: num('mscale_all_dim'),
    attentionFactor: num('attention_factor'),
    truncate: p['truncate'] === undefined ? true : Boolean(p['truncate']),
    freqDtype: (cfg['dtype'] ?? cfg['torch_dtype']) === 'bfloat16' ? 'bf16' : 'f32',
  };
}

const yarnMscale = (scale: number, m = 1): number => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);

export function ropeTable(spec: RopeSpec, maxPositions: number): RopeTable {
  const d = spec.dim;
  const half = d / 2;
  const posFreq = (i: number): number => Math.fround(spec.theta ** ((2 * i) / d));
  const invFreq = new Float32Array(half);
  let attentionScale = 1;
  if (spec.type === 'default') {
    for (let i = 0; i < half; i++) invFreq[i] = 1 / posFreq(i);
  } else if (spec.type === 'linear') {
    const f = spec.factor ?? 1;
    for (let i = 0; i < half; i++) invFreq[i] = 1 / posFreq(i) / f;
  } else {
    const factor = spec.factor ?? 1;
    const origMax = spec.originalMaxPositions ?? maxPositions;
    attentionScale = spec.attentionFactor ?? (spec.mscale && spec.mscaleAllDim
      ? yarnMscale(factor, spec.mscale) / yarnMscale(factor, spec.mscaleAllDim)
      : yarnMscale(factor));
    const betaFast = spec.betaFast ?? 32;
    const betaSlow = spec.betaSlow ?? 1;
    const corrDim = (rot: number): number => (d * Math.log(origMax / (rot * 2 * Math.PI))) / (2 * Math.log(spec.theta));
    let low = corrDim(betaFast);
    let high = corrDim(betaSlow);
    if (spec.truncate !== false) { low = Math.floor(low); high = Math.ceil(high); }
    low = Math.max(low, 0);
    high = Math.min(high, d - 1);
    if (low === high) high += 0.001;
    for (let i = 0; i < half; i++) {
      const pf = posFreq(i);
      const extra = 1 / pf;
      const inter = 1 / (factor * pf);
      const ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
      const extraFactor = 1 - ramp;
      invFreq[i] = inter * (1 - extraFactor) + extra * extraFactor;
    }
  }
  if (spec.freqDtype === 'bf16') for (let i = 0; i < half; i++) invFreq[i] = bf16ToF32(f32ToBf16(invFreq[i]!));
  return { invFreq, attentionScale, interleaved: spec.interleaved };
}

/** Rotate x[T, H, headDim] in place at the given absolute positions (rotated dims start at `offset` within a head). */
export function rope(table: RopeTable, x: Float32Array, T: number, H: number, headDim: number, positions: ArrayLike<number>, offset = 0): void {
  applyRope(x, T, H, headDim, positions, table.invFreq, table.attentionScale, table.interleaved, offset);
}
