/**
 * Phi-3.5-MoE (Microsoft, 2024; transformers `modeling_phimoe.py`): Mixtral-shaped decoder with LayerNorm (weight +
 * bias, eps = config `rms_norm_eps`) in place of RMSNorm, q/k/v/o biases (`attention_bias`), an optional LM-head
 * bias (`lm_head_bias`), RoPE default or longrope (short/long factors with Phi-MoE's `short_mscale`/`long_mscale`
 * cos/sin scale), and an MoE of SwiGLU experts in every layer routed by SparseMixer top-2 (eval branch, masking with
 * `router_jitter_noise`). Experts as `block_sparse_moe.experts.N.w1/w3/w2` (saved layout) or fused
 * `mlp.experts.gate_up_proj/down_proj` (transformers v5 in-memory layout).
 */
import { ConfigReader, baseSpec, detectExperts, gqaAttention, layerPrefix, range } from './common.js';
import type { LayerSpec, ModelSpec, NormSpec } from './spec.js';
import type { Config } from '../io/checkpoint.js';
import { UserError } from '../util/errors.js';
import { onlyValue, type ArchConfig } from './config-schema.js';
import { COMMON_KEYS, SLIDING_WINDOW, expertsKey, gqaHeadsCheck, ropeCheck } from './config-keys.js';

/** The keys modeling_phimoe.py reads (docs/config-audit.md). */
export const phimoeConfig: ArchConfig = {
  schema: {
    ...COMMON_KEYS,
    num_local_experts: expertsKey('num_local_experts'),
    num_experts_per_tok: onlyValue('int', 2, 'sparsemixer routing is top-2 only'),
    attention_bias: { type: 'bool', default: false },
    lm_head_bias: { type: 'bool', default: false },
    sliding_window: SLIDING_WINDOW,
    // Used at inference too: sparsemixer masks scores within 2·jitter of the maximum.
    router_jitter_noise: { type: 'number', min: 0 },
    // Multiplies the MoE input by uniform noise in training only.
    input_jitter_noise: { type: 'number', min: 0 },
  },
  checks: [gqaHeadsCheck, ropeCheck(['default', 'longrope'])],
};

export function phimoeSpec(cfg: Config, names: ReadonlySet<string>): ModelSpec {
  const c = new ConfigReader(cfg, 'phimoe');
  const eps = c.num('rms_norm_eps', 1e-5);
  const ln = (name: string): NormSpec => ({ kind: 'layer', eps, name, bias: true });
  const bias = c.bool('attention_bias', false);
  const window = c.has('sliding_window') ? c.int('sliding_window') : null;
  const k = c.int('num_experts_per_tok', 2);
  if (k !== 2) throw new UserError(`phimoe: sparsemixer routing is top-2 only, but num_experts_per_tok = ${k}`);
  const jitterEps = c.num('router_jitter_noise', 0.01);
  const rp = (cfg['rope_parameters'] ?? cfg['rope_scaling'] ?? {}) as Record<string, unknown>;
  const layers = range(c.int('num_hidden_layers')).map((i): LayerSpec => {
    const p = layerPrefix(i);
    const attention = gqaAttention(c, i, { qkvBias: bias, oBias: bias, slidingWindow: window });
    if (attention.rope.type === 'longrope') {
      // PhimoeRotaryEmbedding (transformers v5) scales cos/sin by short_mscale / long_mscale (picked per call from
      // max(position_ids) + 1 vs original_max_position_embeddings) instead of the generic longrope factor, and its
      // forward recomputes inv_freq with `rope_init_fn(config)` *without* seq_len, so only the short factors are
      // ever used. Verified against transformers 5.18 (a longrope phimoe reference with distinct factors/mscales).
      const sm = rp['short_mscale'];
      const lm = rp['long_mscale'];
      if (typeof sm !== 'number' || typeof lm !== 'number') throw new UserError('phimoe longrope needs numeric rope_parameters.short_mscale and long_mscale');
      attention.rope = { ...attention.rope, longFactor: attention.rope.shortFactor, shortMscale: sm, longMscale: lm };
    } else if (attention.rope.type !== 'default') {
      throw new UserError(`phimoe: rope_type "${attention.rope.type}" is not supported (expected default or longrope)`);
    }
    const legacy = names.has(`${p}.block_sparse_moe.gate.weight`);
    const routerWeight = legacy ? `${p}.block_sparse_moe.gate.weight` : `${p}.mlp.router.weight`;
    return {
      inputNorm: ln(`${p}.input_layernorm`),
      attention,
      postAttentionNorm: ln(`${p}.post_attention_layernorm`),
      ffn: {
        kind: 'moe',
        numExperts: c.int('num_local_experts'),
        topK: k,
        router: { kind: 'sparsemixer', jitterEps },
        routerWeight,
        experts: detectExperts(names, `${p}.block_sparse_moe.experts`, `${p}.mlp.experts`, { gate: 'w1', up: 'w3', down: 'w2' }),
        act: 'silu',
      },
    };
  });
  const spec = baseSpec(c, layers, ln('model.norm'));
  // nn.Linear(bias=lm_head_bias): the bias is its own tensor even when the weight is tied to the embeddings.
  if (c.bool('lm_head_bias', false)) spec.lmHeadBias = 'lm_head.bias';
  return spec;
}
