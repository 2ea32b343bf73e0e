/**
 * The config.json keys the Llama-style MoE architectures share (declared once, spread into each architecture's
 * schema), the RoPE parameters, and the cross-key checks (heads divide, rotary dim even, top-k ≤ experts). See
 * config-schema.ts for the rule language and docs/config-audit.md for where each key comes from.
 */
import { LIMITS, checkNumber, own, type ConfigCheck, type ConfigSchema, type KeyRule } from './config-schema.js';
import { UserError } from '../util/errors.js';

const fail = (msg: string): never => { throw new UserError(`config.json: ${msg}`); };

/** transformers' ACT2FN names of the SiLU gate every architecture here uses. */
export const SILU_ACTS: readonly string[] = ['silu', 'swish'];

/** Keys every architecture reads (embedding, depth, widths, norms, token ids, RoPE, dtype). */
export const COMMON_KEYS: ConfigSchema = {
  vocab_size: { type: 'int', required: true, min: 1, max: LIMITS.vocab },
  hidden_size: { type: 'int', required: true, min: 1, max: LIMITS.width },
  num_hidden_layers: { type: 'int', required: true, min: 1, max: LIMITS.layers },
  num_attention_heads: { type: 'int', required: true, min: 1, max: LIMITS.heads },
  num_key_value_heads: { type: 'int', min: 1, max: { key: 'num_attention_heads' } },
  head_dim: { type: 'int', min: 1, max: LIMITS.headDim },
  intermediate_size: { type: 'int', min: 1, max: LIMITS.width },
  max_position_embeddings: { type: 'int', min: 1, max: LIMITS.positions },
  rms_norm_eps: { type: 'number', gt: 0, lt: 1 },
  tie_word_embeddings: { type: 'bool', default: false },
  bos_token_id: { type: 'int', min: 0, max: LIMITS.vocab - 1 },
  eos_token_id: { type: 'ids' },
  pad_token_id: { type: 'ignored' },
  hidden_act: { type: 'string', oneOf: SILU_ACTS },
  rope_theta: { type: 'number', gt: 0 },
  rope_parameters: { type: 'object' },
  rope_scaling: { type: 'object' },
  partial_rotary_factor: { type: 'number', gt: 0, max: 1 },
  original_max_position_embeddings: { type: 'int', min: 1, max: LIMITS.positions },
  router_aux_loss_coef: { type: 'number', min: 0 },
  dtype: { type: 'string' },
  torch_dtype: { type: 'string' },
  // Training / generation / bookkeeping only: nothing we compute at inference depends on them.
  attention_dropout: { type: 'number', min: 0, lt: 1 },
  initializer_range: { type: 'ignored' },
  use_cache: { type: 'ignored' },
  output_router_logits: { type: 'ignored' },
};

export const expertsKey = (key: string, required = true): KeyRule => ({ type: 'int', required, min: 1, max: LIMITS.experts });
export const topKKey = (expertsKeyName: string): KeyRule => ({ type: 'int', required: true, min: 1, max: { key: expertsKeyName } });
/** A window of ≥ 1 tokens (0 would attend to nothing); null = full attention. */
export const SLIDING_WINDOW: KeyRule = { type: 'int', min: 1, max: LIMITS.positions };

/** RoPE types `ropeSpecFromConfig` computes. */
export const ROPE_TYPES: readonly string[] = ['default', 'linear', 'yarn', 'longrope'];

const ROPE_NUMBERS: Readonly<Record<string, { gt?: number; min?: number; max?: number }>> = {
  rope_theta: { gt: 0 },
  factor: { gt: 0 },
  beta_fast: { min: 0 },
  beta_slow: { min: 0 },
  mscale: { min: 0 },
  mscale_all_dim: { min: 0 },
  attention_factor: { gt: 0 },
  short_mscale: { gt: 0 },
  long_mscale: { gt: 0 },
  partial_rotary_factor: { gt: 0, max: 1 },
};

/**
 * `rope_parameters` (transformers v5) / `rope_scaling` (v4): the rope type must be one the architecture supports,
 * its numbers finite and in range. Lists (longrope factors) are checked against the rotary dim when the table is built.
 */
export function ropeCheck(types: readonly string[] = ROPE_TYPES): ConfigCheck {
  return (cfg) => {
    for (const key of ['rope_parameters', 'rope_scaling']) {
      const p = own(cfg, key) as Record<string, unknown> | undefined;
      if (p === undefined) continue;
      for (const tk of ['rope_type', 'type']) {
        const t = own(p, tk);
        if (t === undefined) continue;
        if (typeof t !== 'string') fail(`${key}.${tk} must be a string, got ${JSON.stringify(t)}`);
        if (!types.includes(t as string)) fail(`${key}.${tk}=${JSON.stringify(t)} is not supported for ${String(cfg['model_type'])} (supported: ${types.join(', ')})`);
      }
      for (const [k, r] of Object.entries(ROPE_NUMBERS)) {
        const v = own(p, k);
        if (v !== undefined) checkNumber(`${key}.${k}`, v, r);
      }
      const omp = own(p, 'original_max_position_embeddings');
      if (omp !== undefined && (typeof omp !== 'number' || !Number.isInteger(omp) || omp < 1)) {
        fail(`${key}.original_max_position_embeddings must be a positive integer, got ${JSON.stringify(omp)}`);
      }
      const tr = own(p, 'truncate');
      if (tr !== undefined && typeof tr !== 'boolean') fail(`${key}.truncate must be true or false, got ${JSON.stringify(tr)}`);
    }
  };
}

/** The GQA head geometry: KV heads divide the query heads, a head_dim exists, the rotary dim is even and ≥ 2. */
export const gqaHeadsCheck: ConfigCheck = (cfg, value) => {
  const H = value('num_attention_heads')!;
  const KVH = value('num_key_value_heads') ?? H;
  if (H % KVH !== 0) fail(`num_attention_heads=${H} must be a multiple of num_key_value_heads=${KVH}`);
  const D = value('hidden_size')!;
  const hd = value('head_dim') ?? D / H;
  if (!Number.isInteger(hd)) fail(`hidden_size=${D} must be a multiple of num_attention_heads=${H} when head_dim is not given`);
  const p = (own(cfg, 'rope_parameters') ?? own(cfg, 'rope_scaling')) as Record<string, unknown> | undefined;
  const partial = (p && own(p, 'partial_rotary_factor')) ?? own(cfg, 'partial_rotary_factor') ?? 1;
  const rot = Math.floor(hd * (partial as number));
  if (rot < 2 || rot % 2 !== 0) fail(`the rotary dimension head_dim × partial_rotary_factor = ${hd} × ${String(partial)} → ${rot} must be even and ≥ 2`);
};
