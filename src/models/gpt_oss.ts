/**
 * GPT-OSS (OpenAI, 2025; transformers `modeling_gpt_oss.py`): Llama-style GQA with q/k/v/o biases, a learned
 * per-head attention sink (an extra softmax logit that carries no value), layers alternating between
 * sliding-window and full causal attention (`layer_types`), YaRN RoPE in the half-split (rotate_half) layout, and an
 * MoE in every layer: router = linear with bias → top-k of the logits → softmax over the k chosen; experts stored
 * fused and transposed (`gate_up_proj` [E, D, 2F] with gate/up interleaved in the last dim, `down_proj` [E, F, D],
 * plus biases) with the clamped SwiGLU `(clamp(up, ±L) + 1) · g · σ(α g)`, g = min(gate, L).
 */
import { ConfigReader, baseSpec, gqaAttention, layerPrefix, range, standardLayer } from './common.js';
import type { ModelSpec } from './spec.js';
import type { Config } from '../io/checkpoint.js';
import { UserError } from '../util/errors.js';
import type { ArchConfig } from './config-schema.js';
import { COMMON_KEYS, SLIDING_WINDOW, expertsKey, gqaHeadsCheck, ropeCheck, topKKey } from './config-keys.js';

/** The keys modeling_gpt_oss.py reads (docs/config-audit.md). */
export const gptOssConfig: ArchConfig = {
  schema: {
    ...COMMON_KEYS,
    // GptOssExperts hard-code their clamped SwiGLU; hidden_act is never read.
    hidden_act: { type: 'ignored' },
    num_local_experts: expertsKey('num_local_experts'),
    num_experts_per_tok: topKKey('num_local_experts'),
    attention_bias: { type: 'bool', default: true },
    sliding_window: SLIDING_WINDOW,
    layer_types: { type: 'string-list', oneOf: ['sliding_attention', 'full_attention'], length: { key: 'num_hidden_layers' } },
    swiglu_limit: { type: 'number', gt: 0 },
    swiglu_alpha: { type: 'number', gt: 0 },
  },
  checks: [gqaHeadsCheck, ropeCheck()],
};

export function gptOssSpec(cfg: Config, names: ReadonlySet<string>): ModelSpec {
  const c = new ConfigReader(cfg, 'gpt_oss');
  if (names.has(`${layerPrefix(0)}.mlp.experts.gate_up_proj_blocks`)) {
    throw new UserError('this gpt_oss checkpoint stores its experts in MXFP4 (gate_up_proj_blocks/_scales), which is not supported; dequantize it to bf16 first');
  }
  const L = c.int('num_hidden_layers');
  const window = c.has('sliding_window') ? c.int('sliding_window') : null;
  // transformers' default when layer_types is absent: sliding on even layers, full on odd ones.
  const rawTypes = cfg['layer_types'];
  const layerTypes: string[] = Array.isArray(rawTypes)
    ? rawTypes.map(String)
    : range(L).map((i) => ((i + 1) % 2 ? 'sliding_attention' : 'full_attention'));
  if (layerTypes.length !== L) throw new UserError(`config.json layer_types has ${layerTypes.length} entries for ${L} layers`);
  const bias = c.bool('attention_bias', true);
  const alpha = c.num('swiglu_alpha', 1.702);
  const limit = c.num('swiglu_limit', 7.0);
  const layers = range(L).map((i) => {
    const p = `${layerPrefix(i)}.mlp`;
    const t = layerTypes[i];
    if (t !== 'sliding_attention' && t !== 'full_attention') throw new UserError(`config.json layer_types[${i}] = ${JSON.stringify(t)} is not sliding_attention/full_attention`);
    const slidingWindow = t === 'sliding_attention' ? window : null;
    const hasRouterBias = names.has(`${p}.router.bias`);
    return standardLayer(c, i, gqaAttention(c, i, { qkvBias: bias, oBias: bias, sinks: true, slidingWindow }), {
      kind: 'moe',
      numExperts: c.int('num_local_experts'),
      topK: c.int('num_experts_per_tok'),
      router: { kind: 'topk-softmax' },
      routerWeight: `${p}.router.weight`,
      routerBias: hasRouterBias ? `${p}.router.bias` : undefined,
      experts: {
        kind: 'fused-transposed-interleaved',
        gateUp: `${p}.experts.gate_up_proj`,
        down: `${p}.experts.down_proj`,
        gateUpBias: names.has(`${p}.experts.gate_up_proj_bias`) ? `${p}.experts.gate_up_proj_bias` : undefined,
        downBias: names.has(`${p}.experts.down_proj_bias`) ? `${p}.experts.down_proj_bias` : undefined,
      },
      act: 'gpt_oss',
      actOpts: { alpha, limit },
    });
  });
  return baseSpec(c, layers);
}
