/**
 * Granite-MoE (IBM, 2024): Llama-style GQA with µP-style multipliers (embedding × embedding_multiplier, attention
 * scale = attention_multiplier, sublayer outputs × residual_multiplier, logits ÷ logits_scaling); MoE routed
 * top-k → softmax over the chosen, experts fused as `input_linear` [E, 2F, D] and `output_linear` [E, D, F].
 */
import { ConfigReader, baseSpec, gqaAttention, layerPrefix, range, standardLayer } from './common.js';
import type { ModelSpec } from './spec.js';
import type { Config } from '../io/checkpoint.js';
import type { ArchConfig } from './config-schema.js';
import { COMMON_KEYS, expertsKey, gqaHeadsCheck, ropeCheck, topKKey } from './config-keys.js';

/** The keys modeling_granitemoe.py reads (docs/config-audit.md). */
export const granitemoeConfig: ArchConfig = {
  schema: {
    ...COMMON_KEYS,
    num_local_experts: expertsKey('num_local_experts'),
    num_experts_per_tok: topKKey('num_local_experts'),
    attention_bias: { type: 'bool', default: false },
    attention_multiplier: { type: 'number', required: true, gt: 0 },
    embedding_multiplier: { type: 'number', gt: 0 },
    residual_multiplier: { type: 'number', gt: 0 },
    logits_scaling: { type: 'number', gt: 0 },
  },
  checks: [gqaHeadsCheck, ropeCheck()],
};

export function granitemoeSpec(cfg: Config, _names: ReadonlySet<string>): ModelSpec {
  const c = new ConfigReader(cfg, 'granitemoe');
  const layers = range(c.int('num_hidden_layers')).map((i) => {
    const p = `${layerPrefix(i)}.block_sparse_moe`;
    const bias = c.bool('attention_bias', false);
    return standardLayer(c, i, gqaAttention(c, i, { scale: c.num('attention_multiplier'), qkvBias: bias, oBias: bias }), {
      kind: 'moe',
      numExperts: c.int('num_local_experts'),
      topK: c.int('num_experts_per_tok'),
      router: { kind: 'topk-softmax' },
      routerWeight: `${p}.router.layer.weight`,
      experts: { kind: 'fused', gateUp: `${p}.input_linear.weight`, down: `${p}.output_linear.weight` },
      act: 'silu',
    });
  });
  return {
    ...baseSpec(c, layers),
    embeddingMultiplier: c.num('embedding_multiplier', 1),
    residualMultiplier: c.num('residual_multiplier', 1),
    logitsScaling: c.num('logits_scaling', 1),
  };
}
