/**
 * OLMoE (AI2, 2024): GQA with q/k RMSNorm over the whole projection (before splitting heads), every layer an MoE
 * routed softmax → top-k without renormalisation.
 */
import { ConfigReader, baseSpec, detectExperts, gqaAttention, layerPrefix, range, standardLayer } from './common.js';
import type { ModelSpec } from './spec.js';
import type { Config } from '../io/checkpoint.js';
import type { ArchConfig, ConfigCheck } from './config-schema.js';
import { COMMON_KEYS, expertsKey, gqaHeadsCheck, ropeCheck, topKKey } from './config-keys.js';
import { UserError } from '../util/errors.js';

/** OlmoeAttention sizes heads as hidden_size / num_attention_heads; a different head_dim would be ignored there. */
const olmoeHeadDim: ConfigCheck = (_cfg, value) => {
  const hd = value('head_dim');
  const D = value('hidden_size')!;
  const H = value('num_attention_heads')!;
  if (hd !== undefined && hd * H !== D) throw new UserError(`config.json: head_dim=${hd} is not supported for olmoe (its heads are hidden_size / num_attention_heads = ${D / H})`);
};

/** The keys modeling_olmoe.py reads (docs/config-audit.md). */
export const olmoeConfig: ArchConfig = {
  schema: {
    ...COMMON_KEYS,
    num_experts: expertsKey('num_experts'),
    num_experts_per_tok: topKKey('num_experts'),
    norm_topk_prob: { type: 'bool', default: false },
    attention_bias: { type: 'bool', default: false },
    clip_qkv: { type: 'number', gt: 0 },
  },
  checks: [gqaHeadsCheck, olmoeHeadDim, ropeCheck()],
};

export function olmoeSpec(cfg: Config, names: ReadonlySet<string>): ModelSpec {
  const c = new ConfigReader(cfg, 'olmoe');
  const bias = c.bool('attention_bias', false);
  // transformers clamps q and k *after* their RMSNorm, v after its projection.
  const clipQkv = c.has('clip_qkv') ? c.num('clip_qkv') : null;
  const layers = range(c.int('num_hidden_layers')).map((i) => {
    const p = `${layerPrefix(i)}.mlp`;
    return standardLayer(c, i, gqaAttention(c, i, { qkNorm: 'full', qkvBias: bias, oBias: bias, clipQkv }), {
      kind: 'moe',
      numExperts: c.int('num_experts'),
      topK: c.int('num_experts_per_tok'),
      router: { kind: 'softmax-topk', normTopK: c.bool('norm_topk_prob', false) },
      routerWeight: `${p}.gate.weight`,
      experts: detectExperts(names, `${p}.experts`, `${p}.experts`, { gate: 'gate_proj', up: 'up_proj', down: 'down_proj' }),
      act: 'silu',
    });
  });
  return baseSpec(c, layers);
}
