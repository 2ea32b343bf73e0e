/**
 * Qwen3-MoE (Qwen team, 2025): GQA with per-head q/k RMSNorm before RoPE and an explicit head_dim; every
 * `decoder_sparse_step`-th layer (outside `mlp_only_layers`) is an MoE with softmax → top-k (renormalised when
 * `norm_topk_prob`). Per-expert `mlp.experts.N.{gate,up,down}_proj` or fused v5 tensors.
 */
import { ConfigReader, baseSpec, detectExperts, gqaAttention, layerPrefix, range, standardLayer } from './common.js';
import type { FfnSpec, ModelSpec } from './spec.js';
import { UserError } from '../util/errors.js';
import type { Config } from '../io/checkpoint.js';
import { LIMITS, type ArchConfig, type ConfigCheck, type ConfigSchema } from './config-schema.js';
import { COMMON_KEYS, expertsKey, gqaHeadsCheck, ropeCheck } from './config-keys.js';

const noSliding = (v: unknown): boolean => v === false;
const allFull = (v: unknown): boolean => Array.isArray(v) && v.every((t) => t === 'full_attention');
const SLIDING_WHY = 'per-layer sliding windows (max_window_layers / layer_types) are not implemented';

/** Keys the Qwen MoE modeling files share (modeling_qwen2_moe.py, modeling_qwen3_moe.py; docs/config-audit.md). */
export const QWEN_MOE_KEYS: ConfigSchema = {
  ...COMMON_KEYS,
  // Qwen3-MoE checkpoints name the expert count num_experts; transformers v5 also accepts num_local_experts.
  num_experts: expertsKey('num_experts', false),
  num_local_experts: expertsKey('num_local_experts', false),
  num_experts_per_tok: { type: 'int', required: true, min: 1, max: LIMITS.experts },
  norm_topk_prob: { type: 'bool' },
  decoder_sparse_step: { type: 'int', min: 1, max: { key: 'num_hidden_layers' } },
  mlp_only_layers: { type: 'int-list', min: 0, max: { key: 'num_hidden_layers', offset: -1 } },
  moe_intermediate_size: { type: 'int', min: 1, max: LIMITS.width },
  use_sliding_window: { type: 'bool', default: false, supported: noSliding, why: SLIDING_WHY },
  sliding_window: { type: 'int', min: 0, max: LIMITS.positions },
  max_window_layers: { type: 'int', min: 0 },
  layer_types: { type: 'string-list', oneOf: ['full_attention', 'sliding_attention'], length: { key: 'num_hidden_layers' }, supported: allFull, why: SLIDING_WHY },
};

/** num_experts_per_tok ≤ the expert count (whichever key names it). */
export const qwenTopKCheck = topKCheckOf(['num_experts', 'num_local_experts']);

export function topKCheckOf(keys: readonly string[]): ConfigCheck {
  return (_cfg, value) => {
    const key = keys.find((k) => value(k) !== undefined);
    if (key === undefined) throw new UserError(`config.json: ${keys.join(' or ')} is required but missing`);
    const E = value(key)!;
    const k = value('num_experts_per_tok')!;
    if (k > E) throw new UserError(`config.json: num_experts_per_tok must be an integer in [1, ${key}=${E}], got ${k}`);
  };
}

/** The keys modeling_qwen3_moe.py reads. */
export const qwen3MoeConfig: ArchConfig = {
  schema: { ...QWEN_MOE_KEYS, attention_bias: { type: 'bool', default: false } },
  checks: [gqaHeadsCheck, ropeCheck(), qwenTopKCheck],
};

export function qwenMoeFfn(c: ConfigReader, i: number, names: ReadonlySet<string>, normDefault: boolean): FfnSpec {
  const p = `${layerPrefix(i)}.mlp`;
  const mlpOnly = new Set(c.ids('mlp_only_layers'));
  const step = c.int('decoder_sparse_step', 1);
  const E = c.int(c.has('num_experts') ? 'num_experts' : 'num_local_experts');
  if (mlpOnly.has(i) || E === 0 || (i + 1) % step !== 0) {
    return { kind: 'dense', gate: `${p}.gate_proj`, up: `${p}.up_proj`, down: `${p}.down_proj`, act: 'silu' };
  }
  return {
    kind: 'moe',
    numExperts: E,
    topK: c.int('num_experts_per_tok'),
    router: { kind: 'softmax-topk', normTopK: c.bool('norm_topk_prob', normDefault) },
    routerWeight: `${p}.gate.weight`,
    experts: detectExperts(names, `${p}.experts`, `${p}.experts`, { gate: 'gate_proj', up: 'up_proj', down: 'down_proj' }),
    act: 'silu',
  };
}

export function qwen3MoeSpec(cfg: Config, names: ReadonlySet<string>): ModelSpec {
  const c = new ConfigReader(cfg, 'qwen3_moe');
  const sliding = c.bool('use_sliding_window', false) && c.has('sliding_window') ? c.int('sliding_window') : null;
  const layers = range(c.int('num_hidden_layers')).map((i) =>
    standardLayer(c, i,
      gqaAttention(c, i, { qkNorm: 'head', qkvBias: c.bool('attention_bias', false), oBias: c.bool('attention_bias', false), slidingWindow: sliding }),
      qwenMoeFfn(c, i, names, false)));
  return baseSpec(c, layers);
}
