/**
 * switchyard_moe: the model type Switchyard writes for MoE models trained with its router zoo. A Qwen3-MoE layout
 * (GQA with per-head q/k RMSNorm before RoPE, explicit head_dim, `decoder_sparse_step` / `mlp_only_layers`,
 * per-expert `mlp.experts.N.{gate,up,down}_proj` or fused v5 tensors, SwiGLU) whose config.json also says how each
 * MoE layer routes:
 *   "router": { "kind": ..., ...options }   a RouterSpec in JSON (option names as in src/moe/routers/router.ts);
 *                                           absent = softmax-topk with `norm_topk_prob`
 *   "extra_experts": ["zero", "copy", ...]  the router's zero-computation expert ids after the FFN experts, in id
 *                                           order; must match what the router declares (checked), absent = none
 *   "n_shared_experts": n                   optional always-on shared experts, one fused gated FFN at
 *                                           `mlp.shared_experts.{gate,up,down}_proj` (DeepSeek layout)
 *   "qk_norm": false                        turns off the per-head q/k RMSNorm (default true)
 * Router tensors live under `model.layers.{i}.mlp` (the router weight is `mlp.gate.weight`; extras as each zoo
 * router documents). Router state (e.g. an aux-free `mlp.gate.e_score_correction_bias`) is read when present.
 * Zoo routers carry their own balancing losses, so `router_aux_loss_coef` is only reported if the config sets it.
 */
import { ConfigReader, baseSpec, detectExperts, gqaAttention, layerPrefix, range, standardLayer } from './common.js';
import type { FfnSpec, ModelSpec } from './spec.js';
import type { Config } from '../io/checkpoint.js';
import type { RouterSpec } from '../moe/routers/router.js';
import type { ExpertKind } from '../moe/routers/trainable.js';
import { parseRouterSpec, zooExtraExperts } from '../moe/routers/zoo.js';
import { UserError } from '../util/errors.js';
import { LIMITS, type ArchConfig } from './config-schema.js';
import { gqaHeadsCheck, ropeCheck } from './config-keys.js';
import { QWEN_MOE_KEYS, topKCheckOf } from './qwen3_moe.js';

const stdTopK = topKCheckOf(['num_experts']);

/** Switchyard's own keys on top of the Qwen3-MoE ones (sliding windows apply to every layer here). */
export const switchyardMoeConfig: ArchConfig = {
  schema: {
    ...QWEN_MOE_KEYS,
    num_experts: { type: 'int', required: true, min: 1, max: LIMITS.experts },
    use_sliding_window: { type: 'bool', default: false },
    sliding_window: { type: 'int', min: 1, max: LIMITS.positions },
    layer_types: { type: 'ignored' },
    attention_bias: { type: 'bool', default: false },
    qk_norm: { type: 'bool', default: true },
    n_shared_experts: { type: 'int', min: 0, max: LIMITS.experts },
    router: { type: 'object' },
    extra_experts: { type: 'ignored' },
  },
  // Zoo routers pick a variable number of experts (extras included) and check their own options; the plain
  // softmax top-k needs k ≤ num_experts.
  checks: [gqaHeadsCheck, ropeCheck(), (cfg, value) => { if (cfg['router'] === undefined || cfg['router'] === null) stdTopK(cfg, value); }],
};

const KINDS: readonly string[] = ['zero', 'copy', 'constant'];

function routerFromConfig(c: ConfigReader): RouterSpec {
  const raw = c.cfg['router'];
  if (raw === undefined || raw === null) return { kind: 'softmax-topk', normTopK: c.bool('norm_topk_prob', true) };
  let spec: RouterSpec;
  try {
    spec = parseRouterSpec(raw);
  } catch (e) {
    throw new UserError(`config.json router: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (spec.kind === 'sparsemixer') throw new UserError('config.json router: sparsemixer is not supported by switchyard_moe');
  const declared = zooExtraExperts(spec);
  const ex = c.cfg['extra_experts'];
  const listed: ExpertKind[] = [];
  if (ex !== undefined && ex !== null) {
    if (!Array.isArray(ex) || ex.some((k) => typeof k !== 'string' || !KINDS.includes(k))) {
      throw new UserError(`config.json extra_experts must be a list of ${KINDS.join(' | ')}, got ${JSON.stringify(ex)}`);
    }
    listed.push(...(ex as ExpertKind[]));
  }
  if (listed.join(',') !== declared.join(',')) {
    throw new UserError(`config.json extra_experts ${JSON.stringify(listed)} do not match router ${spec.kind}, which declares ${JSON.stringify(declared)}`);
  }
  return spec;
}

function switchyardFfn(c: ConfigReader, i: number, names: ReadonlySet<string>, router: RouterSpec): FfnSpec {
  const p = `${layerPrefix(i)}.mlp`;
  const mlpOnly = new Set(c.ids('mlp_only_layers'));
  const step = c.int('decoder_sparse_step', 1);
  const E = c.int('num_experts');
  if (mlpOnly.has(i) || E === 0 || step === 0 || (i + 1) % step !== 0) {
    return { kind: 'dense', gate: `${p}.gate_proj`, up: `${p}.up_proj`, down: `${p}.down_proj`, act: 'silu' };
  }
  const shared = c.int('n_shared_experts', 0) > 0
    ? { ffn: { kind: 'dense' as const, gate: `${p}.shared_experts.gate_proj`, up: `${p}.shared_experts.up_proj`, down: `${p}.shared_experts.down_proj`, act: 'silu' as const } }
    : undefined;
  return {
    kind: 'moe',
    numExperts: E,
    topK: c.int('num_experts_per_tok'),
    router: router.kind === 'sigmoid-group-topk' && !router.biasName ? { ...router, biasName: `${p}.gate.e_score_correction_bias` } : router,
    routerWeight: `${p}.gate.weight`,
    experts: detectExperts(names, `${p}.experts`, `${p}.experts`, { gate: 'gate_proj', up: 'up_proj', down: 'down_proj' }),
    act: 'silu',
    shared,
  };
}

export function switchyardMoeSpec(cfg: Config, names: ReadonlySet<string>): ModelSpec {
  const c = new ConfigReader(cfg, 'switchyard_moe');
  const router = routerFromConfig(c);
  const sliding = c.bool('use_sliding_window', false) && c.has('sliding_window') ? c.int('sliding_window') : null;
  const bias = c.bool('attention_bias', false);
  const layers = range(c.int('num_hidden_layers')).map((i) =>
    standardLayer(c, i,
      gqaAttention(c, i, { qkNorm: c.bool('qk_norm', true) ? 'head' : 'none', qkvBias: bias, oBias: bias, slidingWindow: sliding }),
      switchyardFfn(c, i, names, router)));
  return baseSpec(c, layers);
}
