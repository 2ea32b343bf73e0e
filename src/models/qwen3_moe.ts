/**
 * Qwen3-MoE (Qwen team, 2025): GQA with per-head q/k RMSNorm before RoPE and an explicit head_dim; every
 * `decoder_sparse_step`-th layer (outside `mlp_only_layers`) is an MoE with softmax → top-k (renormalised when
 * `norm_topk_prob`). Per-expert `mlp.experts.N.{gate,up,down}_proj` or fused v5 tensors.
 */
import { ConfigReader, baseSpec, detectExperts, gqaAttention, layerPrefix, range, standardLayer } from './common.js';
import type { FfnSpec, ModelSpec } from './spec.js';
import type { Config } from '../io/checkpoint.js';

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
