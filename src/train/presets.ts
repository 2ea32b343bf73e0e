/**
 * Named router presets for `switchyard train --router NAME` and `compare-routers`, and the config.json a new model
 * gets. A plain softmax top-k model is written as `qwen3_moe` (a standard transformers model type: Qwen3-MoE loads
 * it); every other router as `switchyard_moe` (same layout + a "router" entry; see src/models/switchyard_moe.ts).
 */
import type { Config } from '../io/checkpoint.js';
import type { RouterSpec } from '../moe/routers/router.js';
import { zooExtraExperts } from '../moe/routers/zoo.js';
import { UserError } from '../util/errors.js';

export interface ModelShape {
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Routed experts' intermediate size. */
  expertFfn: number;
  experts: number;
  topK: number;
  /** Always-on shared experts (0 = none), each of width expertFfn. */
  sharedExperts: number;
  maxPositions: number;
  tieEmbeddings: boolean;
}

export const DEFAULT_SHAPE: ModelShape = {
  layers: 4, hidden: 128, heads: 4, kvHeads: 2, headDim: 32, expertFfn: 128, experts: 8, topK: 2, sharedExperts: 0,
  maxPositions: 512, tieEmbeddings: true,
};

/** Router presets: the spec, and the transformers load-balancing coefficient for the standard router. */
export const ROUTER_PRESETS: Record<string, { describe: string; spec: (s: ModelShape) => RouterSpec | 'standard' }> = {
  'softmax-topk': { describe: 'softmax → top-k → renormalise, Switch load-balancing loss (Qwen3-MoE; standard model_type)', spec: () => 'standard' },
  'softmax-topk-zloss': { describe: 'softmax top-k + Switch LB loss + router z-loss (ST-MoE)', spec: () => ({ kind: 'balanced-softmax-topk', normTopK: true, lbCoef: 0.01, zCoef: 0.001 }) },
  'no-balance': { describe: 'softmax top-k with no balancing at all (baseline)', spec: () => ({ kind: 'balanced-softmax-topk', normTopK: true }) },
  'aux-free': { describe: 'sigmoid scores + auxiliary-loss-free bias balancing (DeepSeek-V3)', spec: () => ({ kind: 'aux-free-sigmoid', normTopK: true, biasUpdateRate: 0.001 }) },
  'group-limited': { describe: 'group-limited top-k (DeepSeek): best 2 of 4 groups', spec: (s) => ({ kind: 'group-limited-topk', score: 'softmax', nGroup: Math.min(4, s.experts), topkGroup: Math.min(2, s.experts), normTopK: true, lbCoef: 0.01 }) },
  'capacity': { describe: 'softmax top-k with capacity factor 1.25 and token dropping', spec: () => ({ kind: 'balanced-softmax-topk', normTopK: true, lbCoef: 0.01, capacityFactor: 1.25 }) },
  'expert-choice': { describe: 'expert choice: experts pick their top tokens (capacity factor 1)', spec: () => ({ kind: 'expert-choice', capacityFactor: 1 }) },
  'null-experts': { describe: 'AdaMoE: top-k over experts + as many null (zero-FLOP) experts', spec: (s) => ({ kind: 'null-experts', numNull: s.experts, normTopK: true, lbCoef: 0.01 }) },
  'moe++': { describe: 'MoE++: zero / copy / constant experts with gating residuals', spec: () => ({ kind: 'moe-plus-plus', zero: 1, copy: 1, constant: 2, gatingResidual: true, lbCoef: 0.01 }) },
  'top-p': { describe: 'dynamic top-p routing (p = 0.4) with its entropy loss', spec: (s) => ({ kind: 'top-p', threshold: 0.4, maxK: s.experts, entropyCoef: 1e-4, lbCoef: 0.01 }) },
  'relu': { describe: 'ReMoE: ReLU gates with adaptive L1 sparsity toward k active experts', spec: (s) => ({ kind: 'relu', targetActive: s.topK }) },
  'recurrent': { describe: 'RMoE: a GRU carries routing state across layers', spec: () => ({ kind: 'recurrent', projDim: 32, normTopK: true, lbCoef: 0.01 }) },
};

export function routerPreset(name: string, shape: ModelShape): RouterSpec | 'standard' {
  const p = ROUTER_PRESETS[name];
  if (!p) throw new UserError(`unknown router "${name}" (choose from: ${Object.keys(ROUTER_PRESETS).join(', ')})`);
  return p.spec(shape);
}

/** config.json of a new model: qwen3_moe for the standard router, switchyard_moe otherwise. */
export function modelConfig(shape: ModelShape, router: RouterSpec | 'standard', vocabSize: number, eosId: number, lbCoef = 0.01): Config {
  const base: Config = {
    architectures: [router === 'standard' ? 'Qwen3MoeForCausalLM' : 'SwitchyardMoeForCausalLM'],
    model_type: router === 'standard' ? 'qwen3_moe' : 'switchyard_moe',
    vocab_size: vocabSize,
    hidden_size: shape.hidden,
    num_hidden_layers: shape.layers,
    num_attention_heads: shape.heads,
    num_key_value_heads: shape.kvHeads,
    head_dim: shape.headDim,
    intermediate_size: shape.expertFfn,
    moe_intermediate_size: shape.expertFfn,
    num_experts: shape.experts,
    num_experts_per_tok: shape.topK,
    norm_topk_prob: true,
    decoder_sparse_step: 1,
    mlp_only_layers: [],
    max_position_embeddings: shape.maxPositions,
    rms_norm_eps: 1e-6,
    rope_parameters: { rope_theta: 10000, rope_type: 'default' },
    tie_word_embeddings: shape.tieEmbeddings,
    attention_bias: false,
    bos_token_id: eosId,
    eos_token_id: eosId,
    dtype: 'float32',
  };
  if (router === 'standard') {
    if (shape.sharedExperts) throw new UserError('shared experts need a non-standard router preset (qwen3_moe has none)');
    return { ...base, router_aux_loss_coef: lbCoef };
  }
  const cfg: Config = { ...base, router, extra_experts: zooExtraExperts(router) };
  if (shape.sharedExperts) cfg['n_shared_experts'] = shape.sharedExperts;
  return cfg;
}
