/** Shared helpers for model files: typed config access and the standard Llama-style pieces. */
import type { Config } from '../io/checkpoint.js';
import { UserError } from '../util/errors.js';
import { ropeSpecFromConfig } from '../nn/rope.js';
import type { ExpertLayout, GqaAttentionSpec, ModelSpec, NormSpec, LayerSpec } from './spec.js';

export class ConfigReader {
  constructor(readonly cfg: Config, readonly modelType: string) {}
  has(key: string): boolean {
    return this.cfg[key] !== undefined && this.cfg[key] !== null;
  }
  num(key: string, fallback?: number): number {
    const v = this.cfg[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new UserError(`config.json (${this.modelType}) is missing ${key}`);
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new UserError(`config.json ${key} must be a number, got ${JSON.stringify(v)}`);
    return v;
  }
  int(key: string, fallback?: number): number {
    const v = this.num(key, fallback);
    if (!Number.isInteger(v) || v < 0) throw new UserError(`config.json ${key} must be a non-negative integer, got ${v}`);
    return v;
  }
  /** A JSON boolean (the string "false" is an error, not true). */
  bool(key: string, fallback: boolean): boolean {
    const v = this.cfg[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') throw new UserError(`config.json: ${key} must be true or false (a JSON boolean), got ${JSON.stringify(v)}`);
    return v;
  }
  str(key: string, fallback: string): string {
    const v = this.cfg[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'string') throw new UserError(`config.json: ${key} must be a string, got ${JSON.stringify(v)}`);
    return v;
  }
  /** A non-negative integer or a list of them (token ids, layer indices); anything else is an error naming the key. */
  ids(key: string): number[] {
    const v = this.cfg[key];
    if (v === undefined || v === null) return [];
    const list: unknown[] = Array.isArray(v) ? v : [v];
    for (const x of list) {
      if (typeof x !== 'number' || !Number.isInteger(x) || x < 0) throw new UserError(`config.json: ${key} must be a non-negative integer or a list of them, got ${JSON.stringify(v)}`);
    }
    return list as number[];
  }
}

export const layerPrefix = (i: number): string => `model.layers.${i}`;

export function rmsNorm(name: string, c: ConfigReader): NormSpec {
  return { kind: 'rms', eps: c.num('rms_norm_eps', 1e-6), name };
}

/** Standard GQA attention under `model.layers.{i}.self_attn` with RoPE over the whole head. */
export function gqaAttention(c: ConfigReader, i: number, over: Partial<GqaAttentionSpec> = {}): GqaAttentionSpec {
  const H = c.int('num_attention_heads');
  const D = c.int('hidden_size');
  const hd = c.has('head_dim') ? c.int('head_dim') : D / H;
  const partial = c.num('partial_rotary_factor', 1);
  return {
    kind: 'gqa',
    prefix: `${layerPrefix(i)}.self_attn`,
    numHeads: H,
    numKvHeads: c.int('num_key_value_heads', H),
    headDim: hd,
    qkvBias: false,
    oBias: false,
    qkNorm: 'none',
    qkNormEps: c.num('rms_norm_eps', 1e-6),
    scale: 1 / Math.sqrt(hd),
    rope: ropeSpecFromConfig(c.cfg, Math.floor(hd * partial)),
    slidingWindow: null,
    sinks: false,
    clipQkv: null,
    ...over,
  };
}

/**
 * Per-expert tensors if expert 0 exists under `perExpertPrefix`, else the fused 3-D layout under `fusedPrefix`
 * (transformers v5 `gate_up_proj` [E, 2F, D] / `down_proj` [E, D, F]).
 */
export function detectExperts(
  names: ReadonlySet<string>, perExpertPrefix: string, fusedPrefix: string,
  proj: { gate: string; up: string; down: string },
): ExpertLayout {
  if (names.has(`${perExpertPrefix}.0.${proj.gate}.weight`)) return { kind: 'per-expert', prefix: perExpertPrefix, ...proj };
  if (names.has(`${fusedPrefix}.gate_up_proj`)) return { kind: 'fused', gateUp: `${fusedPrefix}.gate_up_proj`, down: `${fusedPrefix}.down_proj` };
  throw new UserError(`checkpoint is missing the experts under ${perExpertPrefix}: found neither per-expert tensors (${perExpertPrefix}.0.${proj.gate}.weight) nor fused ones (${fusedPrefix}.gate_up_proj)`);
}

/** The parts of a ModelSpec every Llama-style MoE shares; model files fill in the layers. */
export function baseSpec(c: ConfigReader, layers: LayerSpec[], finalNorm: NormSpec = rmsNorm('model.norm', c)): ModelSpec {
  const tie = c.bool('tie_word_embeddings', false);
  return {
    modelType: c.modelType,
    vocabSize: c.int('vocab_size'),
    hiddenSize: c.int('hidden_size'),
    maxPositions: c.int('max_position_embeddings', 4096),
    embedding: 'model.embed_tokens.weight',
    layers,
    finalNorm,
    lmHead: tie ? 'model.embed_tokens.weight' : 'lm_head.weight',
    embeddingMultiplier: 1,
    residualMultiplier: 1,
    logitsScaling: 1,
    bosTokenId: c.has('bos_token_id') ? c.int('bos_token_id') : undefined,
    eosTokenIds: c.ids('eos_token_id'),
    routerAuxLossCoef: c.has('router_aux_loss_coef') ? c.num('router_aux_loss_coef') : undefined,
  };
}

export function standardLayer(c: ConfigReader, i: number, attention: LayerSpec['attention'], ffn: LayerSpec['ffn']): LayerSpec {
  return {
    inputNorm: rmsNorm(`${layerPrefix(i)}.input_layernorm`, c),
    attention,
    postAttentionNorm: rmsNorm(`${layerPrefix(i)}.post_attention_layernorm`, c),
    ffn,
  };
}

export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
