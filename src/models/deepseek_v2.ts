/**
 * DeepSeek-V2 (DeepSeek-AI, 2024, arXiv:2405.04434): Multi-head Latent Attention (q_proj, or q LoRA when
 * `q_lora_rank` is set) with RoPE on a decoupled rope part in the complex/interleaved pair layout; the first
 * `first_k_dense_replace` layers are dense SwiGLU MLPs, then every `moe_layer_freq`-th layer is a DeepSeekMoE block:
 * softmax router with greedy or group-limited-greedy top-k scaled by `routed_scaling_factor`, routed experts
 * `mlp.experts.N.{gate,up,down}_proj` (or fused v5 tensors), plus `n_shared_experts` always-on shared experts stored as
 * one ungated dense FFN `mlp.shared_experts`.
 */
import { ConfigReader, baseSpec, detectExperts, layerPrefix, range, standardLayer } from './common.js';
import type { FfnSpec, MlaAttentionSpec, ModelSpec } from './spec.js';
import type { RouterSpec } from '../moe/routers/router.js';
import type { Config } from '../io/checkpoint.js';
import { ropeSpecFromConfig } from '../nn/rope.js';
import { UserError } from '../util/errors.js';
import { LIMITS, onlyValue, type ArchConfig, type ConfigCheck, type ConfigSchema } from './config-schema.js';
import { COMMON_KEYS, expertsKey, ropeCheck } from './config-keys.js';

/** Keys the DeepSeek modeling files share (modeling_deepseek_v2.py / _v3.py; docs/config-audit.md). */
export const DEEPSEEK_KEYS: ConfigSchema = {
  ...COMMON_KEYS,
  q_lora_rank: { type: 'int', min: 1, max: LIMITS.width },
  kv_lora_rank: { type: 'int', required: true, min: 1, max: LIMITS.width },
  qk_nope_head_dim: { type: 'int', required: true, min: 1, max: LIMITS.headDim },
  qk_rope_head_dim: { type: 'int', required: true, min: 2, max: LIMITS.headDim },
  v_head_dim: { type: 'int', required: true, min: 1, max: LIMITS.headDim },
  n_routed_experts: expertsKey('n_routed_experts', false),
  num_experts_per_tok: { type: 'int', min: 1, max: { key: 'n_routed_experts' } },
  n_shared_experts: { type: 'int', min: 0, max: LIMITS.experts },
  moe_intermediate_size: { type: 'int', min: 1, max: LIMITS.width },
  first_k_dense_replace: { type: 'int', min: 0, max: { key: 'num_hidden_layers' } },
  n_group: { type: 'int', min: 1, max: { key: 'n_routed_experts' } },
  topk_group: { type: 'int', min: 1, max: { key: 'n_group' } },
  routed_scaling_factor: { type: 'number', gt: 0 },
  norm_topk_prob: { type: 'bool' },
  attention_bias: { type: 'bool', default: false },
  mlp_bias: onlyValue('bool', false),
  // Tensor-parallel slicing of the original checkpoint code; transformers' forward ignores it.
  pretraining_tp: { type: 'ignored' },
};

/** MLA and DeepSeekMoE geometry: an even rope part, experts in equal groups, a top-k when there are experts. */
export const deepseekCheck: ConfigCheck = (_cfg, value) => {
  const dr = value('qk_rope_head_dim')!;
  if (dr % 2 !== 0) throw new UserError(`config.json: qk_rope_head_dim must be even, got ${dr}`);
  const E = value('n_routed_experts');
  if (E === undefined) return;
  if (value('num_experts_per_tok') === undefined) throw new UserError('config.json: num_experts_per_tok is required when n_routed_experts is set');
  const g = value('n_group') ?? 1;
  if (E % g !== 0) throw new UserError(`config.json: n_routed_experts=${E} must be a multiple of n_group=${g}`);
};

/** The keys modeling_deepseek_v2.py reads. */
export const deepseekV2Config: ArchConfig = {
  schema: {
    ...DEEPSEEK_KEYS,
    moe_layer_freq: { type: 'int', min: 1, max: { key: 'num_hidden_layers' } },
    topk_method: { type: 'string', oneOf: ['greedy', 'group_limited_greedy'] },
  },
  checks: [ropeCheck(), deepseekCheck],
};

const yarnMscale = (factor: number, m: number): number => (factor <= 1 ? 1 : 0.1 * m * Math.log(factor) + 1);

/**
 * MLA attention of layer i. Softmax scale = qk_head_dim^-0.5, × mscale(factor, mscale_all_dim)² when the rope is
 * scaled (non-default rope_type) and `mscale_all_dim` is set (DeepSeek's YaRN convention; transformers' DeepseekV3).
 * q_a_layernorm / kv_a_layernorm use eps 1e-6 (transformers builds them without the config's rms_norm_eps).
 */
export function mlaAttention(c: ConfigReader, i: number, interleaved: boolean): MlaAttentionSpec {
  const dn = c.int('qk_nope_head_dim');
  const dr = c.int('qk_rope_head_dim');
  const rope = ropeSpecFromConfig(c.cfg, dr, interleaved);
  let scale = 1 / Math.sqrt(dn + dr);
  const rp = (c.cfg['rope_parameters'] ?? c.cfg['rope_scaling']) as Record<string, unknown> | null | undefined;
  const ropeType = String(rp?.['rope_type'] ?? rp?.['type'] ?? 'default');
  const mAll = Number(rp?.['mscale_all_dim'] ?? 0);
  if (ropeType !== 'default' && mAll) {
    const m = yarnMscale(Number(rp?.['factor'] ?? 1), mAll);
    scale *= m * m;
  }
  return {
    kind: 'mla',
    prefix: `${layerPrefix(i)}.self_attn`,
    numHeads: c.int('num_attention_heads'),
    qLoraRank: c.has('q_lora_rank') ? c.int('q_lora_rank') : null,
    kvLoraRank: c.int('kv_lora_rank'),
    qkNopeDim: dn,
    qkRopeDim: dr,
    vHeadDim: c.int('v_head_dim'),
    normEps: 1e-6,
    scale,
    rope,
    bias: c.bool('attention_bias', false),
  };
}

/** Dense MLP for the first `first_k_dense_replace` layers (and off-frequency layers), else a DeepSeekMoE block. */
export function deepseekFfn(c: ConfigReader, i: number, names: ReadonlySet<string>, router: RouterSpec, routerBias?: string): FfnSpec {
  const p = `${layerPrefix(i)}.mlp`;
  const E = c.has('n_routed_experts') ? c.int('n_routed_experts') : 0;
  const freq = Math.max(1, c.int('moe_layer_freq', 1));
  if (E === 0 || i < c.int('first_k_dense_replace', 0) || i % freq !== 0) {
    return { kind: 'dense', gate: `${p}.gate_proj`, up: `${p}.up_proj`, down: `${p}.down_proj`, act: 'silu' };
  }
  const nShared = c.has('n_shared_experts') ? c.int('n_shared_experts') : 0;
  const sp = `${p}.shared_experts`;
  return {
    kind: 'moe',
    numExperts: E,
    topK: c.int('num_experts_per_tok'),
    router,
    routerWeight: `${p}.gate.weight`,
    routerBias,
    experts: detectExperts(names, `${p}.experts`, `${p}.experts`, { gate: 'gate_proj', up: 'up_proj', down: 'down_proj' }),
    act: 'silu',
    shared: nShared > 0
      ? { ffn: { kind: 'dense', gate: `${sp}.gate_proj`, up: `${sp}.up_proj`, down: `${sp}.down_proj`, act: 'silu' } }
      : undefined,
  };
}

export function deepseekV2Spec(cfg: Config, names: ReadonlySet<string>): ModelSpec {
  const c = new ConfigReader(cfg, 'deepseek_v2');
  const method = c.str('topk_method', 'greedy');
  if (method !== 'greedy' && method !== 'group_limited_greedy') {
    throw new UserError(`deepseek_v2: unsupported topk_method ${JSON.stringify(method)} (greedy, group_limited_greedy)`);
  }
  const router: RouterSpec = {
    kind: 'group-limited-greedy',
    nGroup: c.int('n_group', 1),
    topkGroup: c.int('topk_group', 1),
    method,
    // transformers v5's DeepseekV2 multiplies by routed_scaling_factor and never renormalises (norm_topk_prob is
    // kept in its config only for backward compatibility), so neither do we.
    normTopK: false,
    scaling: c.num('routed_scaling_factor', 1),
  };
  const layers = range(c.int('num_hidden_layers')).map((i) =>
    standardLayer(c, i, mlaAttention(c, i, true), deepseekFfn(c, i, names, router)));
  return baseSpec(c, layers);
}
