/**
 * The declarative description of a causal MoE language model: *what* each layer is (norms, attention kind, router,
 * expert layout, weight names). Model files (mixtral.ts, qwen3_moe.ts, …) build one from a config.json; blocks in
 * nn/ and moe/ say *how*; backends say *where*.
 */
import type { RopeSpec } from '../nn/rope.js';
import type { RouterSpec } from '../moe/routers/router.js';
import type { GatedActivation } from '../backend/cpu/activations.js';

export interface NormSpec {
  kind: 'rms' | 'layer';
  eps: number;
  /** Weight name (and `.bias` sibling for LayerNorm with bias) without the `.weight` suffix. */
  name: string;
  bias?: boolean;
}

export interface GqaAttentionSpec {
  kind: 'gqa';
  prefix: string;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  qkvBias: boolean;
  oBias: boolean;
  /** q/k RMSNorm: per head (Qwen3) or over the whole projection (OLMoE). */
  qkNorm: 'none' | 'head' | 'full';
  qkNormEps: number;
  scale: number;
  rope: RopeSpec;
  slidingWindow: number | null;
  sinks: boolean;
  /**
   * OLMoE `clip_qkv`: q and k (after their q/k norm) and v are clamped to [-clipQkv, clipQkv] before RoPE, as
   * transformers' OlmoeAttention does. null = no clamp.
   */
  clipQkv?: number | null;
}

export interface MlaAttentionSpec {
  kind: 'mla';
  prefix: string;
  numHeads: number;
  qLoraRank: number | null;
  kvLoraRank: number;
  qkNopeDim: number;
  qkRopeDim: number;
  vHeadDim: number;
  normEps: number;
  scale: number;
  rope: RopeSpec;
  /** `attention_bias`: biases on q_a_proj, kv_a_proj_with_mqa and o_proj (default false). */
  bias?: boolean;
}

export type AttentionSpec = GqaAttentionSpec | MlaAttentionSpec;

/** A gated FFN (gate, up, down projections). Names are full tensor names without `.weight`. */
export interface DenseFfnSpec {
  kind: 'dense';
  gate: string;
  up: string;
  down: string;
  act: GatedActivation;
}

/**
 * How a layer's routed experts are stored:
 * - per-expert: `${prefix}.${e}.${gate|up|down}.weight`
 * - fused: `gateUp` [E, 2F, D] (gate rows first) and `down` [E, D, F] (Mixtral/Qwen3 in transformers v5, Granite)
 * - fused-transposed-interleaved: GPT-OSS `gate_up_proj` [E, D, 2F] with gate/up interleaved in the last dim,
 *   `down_proj` [E, F, D], plus per-expert biases.
 */
export type ExpertLayout =
  | { kind: 'per-expert'; prefix: string; gate: string; up: string; down: string }
  | { kind: 'fused'; gateUp: string; down: string }
  | { kind: 'fused-transposed-interleaved'; gateUp: string; down: string; gateUpBias?: string; downBias?: string };

export interface SharedExpertSpec {
  ffn: DenseFfnSpec;
  /** Qwen2-MoE: output scaled by sigmoid(x · w_gate). */
  gate?: string;
}

export interface MoeSpec {
  kind: 'moe';
  numExperts: number;
  topK: number;
  router: RouterSpec;
  /** Router weight [E, D] (full name) and optional bias [E]. */
  routerWeight: string;
  routerBias?: string;
  experts: ExpertLayout;
  act: GatedActivation;
  /** GPT-OSS clamped SwiGLU constants. */
  actOpts?: { alpha: number; limit: number };
  shared?: SharedExpertSpec;
}

export type FfnSpec = DenseFfnSpec | MoeSpec;

export interface LayerSpec {
  inputNorm: NormSpec;
  attention: AttentionSpec;
  postAttentionNorm: NormSpec;
  ffn: FfnSpec;
}

export interface ModelSpec {
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  maxPositions: number;
  embedding: string;
  layers: LayerSpec[];
  finalNorm: NormSpec;
  lmHead: string;
  lmHeadBias?: string;
  /** Granite: embeddings × embeddingMultiplier, sublayer outputs × residualMultiplier, logits ÷ logitsScaling. */
  embeddingMultiplier: number;
  residualMultiplier: number;
  logitsScaling: number;
  bosTokenId?: number;
  eosTokenIds: number[];
  /** Coefficient of the load-balancing loss in `loss_with_aux`, when the architecture defines one. */
  routerAuxLossCoef?: number;
}
