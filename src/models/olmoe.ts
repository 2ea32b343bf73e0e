/**
 * OLMoE (AI2, 2024): GQA with q/k RMSNorm over the whole projection (before splitting heads), every layer an MoE
 * routed softmax → top-k without renormalisation.
 */
import { ConfigReader, baseSpec, detectExperts, gqaAttention, layerPrefix, range, standardLayer } from './common.js';
import type { ModelSpec } from './spec.js';
import type { Config } from '../io/checkpoint.js';
import { UserError } from '../util/errors.js';

export function olmoeSpec(cfg: Config, names: ReadonlySet<string>): ModelSpec {
  const c = new ConfigReader(cfg, 'olmoe');
  if (c.has('clip_qkv')) throw new UserError('olmoe with clip_qkv is not supported yet');
  const layers = range(c.int('num_hidden_layers')).map((i) => {
    const p = `${layerPrefix(i)}.mlp`;
    return standardLayer(c, i, gqaAttention(c, i, { qkNorm: 'full', qkvBias: c.bool('attention_bias', false) }), {
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
