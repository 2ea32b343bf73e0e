/**
 * Mixtral (Mistral AI, "Mixtral of Experts", 2024): Llama-style GQA attention with RoPE, every layer an MoE of
 * SwiGLU experts routed by softmax → top-k → renormalise. Experts as `block_sparse_moe.experts.N.w1/w3/w2`
 * (transformers v4 layout) or fused `mlp.experts.gate_up_proj/down_proj` (v5).
 */
import { ConfigReader, baseSpec, detectExperts, gqaAttention, layerPrefix, range, standardLayer } from './common.js';
import type { ModelSpec } from './spec.js';
import type { Config } from '../io/checkpoint.js';
import type { ArchConfig } from './config-schema.js';
import { COMMON_KEYS, SLIDING_WINDOW, expertsKey, gqaHeadsCheck, ropeCheck, topKKey } from './config-keys.js';

/** The keys modeling_mixtral.py reads (docs/config-audit.md). */
export const mixtralConfig: ArchConfig = {
  schema: {
    ...COMMON_KEYS,
    num_local_experts: expertsKey('num_local_experts'),
    num_experts_per_tok: topKKey('num_local_experts'),
    sliding_window: SLIDING_WINDOW,
    // Multiplies the router input by uniform noise in training only.
    router_jitter_noise: { type: 'number', min: 0 },
  },
  checks: [gqaHeadsCheck, ropeCheck()],
};

export function mixtralSpec(cfg: Config, names: ReadonlySet<string>): ModelSpec {
  const c = new ConfigReader(cfg, 'mixtral');
  const window = c.has('sliding_window') ? c.int('sliding_window') : null;
  const layers = range(c.int('num_hidden_layers')).map((i) => {
    const p = layerPrefix(i);
    const perExpert = names.has(`${p}.block_sparse_moe.gate.weight`);
    const moePrefix = perExpert ? `${p}.block_sparse_moe` : `${p}.mlp`;
    return standardLayer(c, i, gqaAttention(c, i, { slidingWindow: window }), {
      kind: 'moe',
      numExperts: c.int('num_local_experts'),
      topK: c.int('num_experts_per_tok'),
      router: { kind: 'softmax-topk', normTopK: true },
      routerWeight: `${moePrefix}.gate.weight`,
      experts: detectExperts(names, `${moePrefix}.experts`, `${moePrefix}.experts`, { gate: 'w1', up: 'w3', down: 'w2' }),
      act: 'silu',
    });
  });
  return baseSpec(c, layers);
}
