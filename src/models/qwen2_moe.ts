/**
 * Qwen2-MoE / Qwen1.5-MoE (Qwen team, 2024): GQA with q/k/v biases; MoE layers route softmax → top-k without
 * renormalisation by default, plus one shared expert whose output is scaled by sigmoid(x · w_shared_gate).
 */
import { ConfigReader, baseSpec, gqaAttention, layerPrefix, range, standardLayer } from './common.js';
import { QWEN_MOE_KEYS, qwenMoeFfn, qwenTopKCheck } from './qwen3_moe.js';
import type { ArchConfig } from './config-schema.js';
import { gqaHeadsCheck, ropeCheck } from './config-keys.js';
import { LIMITS } from './config-schema.js';
import type { ModelSpec } from './spec.js';
import type { Config } from '../io/checkpoint.js';

/** The keys modeling_qwen2_moe.py reads (docs/config-audit.md). */
export const qwen2MoeConfig: ArchConfig = {
  schema: {
    ...QWEN_MOE_KEYS,
    shared_expert_intermediate_size: { type: 'int', min: 0, max: LIMITS.width },
    qkv_bias: { type: 'bool', default: true },
  },
  checks: [gqaHeadsCheck, ropeCheck(), qwenTopKCheck],
};

export function qwen2MoeSpec(cfg: Config, names: ReadonlySet<string>): ModelSpec {
  const c = new ConfigReader(cfg, 'qwen2_moe');
  const sliding = c.bool('use_sliding_window', false) && c.has('sliding_window') ? c.int('sliding_window') : null;
  const layers = range(c.int('num_hidden_layers')).map((i) => {
    const ffn = qwenMoeFfn(c, i, names, false);
    const p = `${layerPrefix(i)}.mlp`;
    if (ffn.kind === 'moe' && c.int('shared_expert_intermediate_size', 0) > 0) {
      ffn.shared = {
        ffn: { kind: 'dense', gate: `${p}.shared_expert.gate_proj`, up: `${p}.shared_expert.up_proj`, down: `${p}.shared_expert.down_proj`, act: 'silu' },
        gate: `${p}.shared_expert_gate`,
      };
    }
    return standardLayer(c, i, gqaAttention(c, i, { qkvBias: c.bool('qkv_bias', true), slidingWindow: sliding }), ffn);
  });
  return baseSpec(c, layers);
}
