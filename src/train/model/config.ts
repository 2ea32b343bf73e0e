/**
 * ModelSpecs for models that have no checkpoint yet (random initialisation): the registry's spec builders detect
 * the expert layout from tensor names, so they are given the names a Hugging Face `save_pretrained` would write
 * (per-expert tensors, or the fused transformers-v5 layout). Also the FFN widths a spec does not carry.
 */
import type { Config } from '../../io/checkpoint.js';
import type { ModelSpec } from '../../models/spec.js';
import { specFor } from '../../models/registry.js';

/** The tensor names a new model of `layout` has, as far as the spec builders ask (everything but MXFP4 blocks). */
function layoutNames(layout: 'per-expert' | 'fused'): ReadonlySet<string> {
  const has = (n: string): boolean => {
    if (n.endsWith('_blocks')) return false;
    if (layout === 'per-expert') return true;
    // Fused (transformers v5 in-memory names): no per-expert tensors, Mixtral/Phi-MoE under `mlp`.
    return !/\.experts\.\d+\./.test(n) && !n.includes('.block_sparse_moe.gate.');
  };
  // Only `has` is consulted by the builders; the rest satisfies ReadonlySet for type checking.
  const empty = new Set<string>();
  return {
    has,
    get size() { return 0; },
    forEach: empty.forEach.bind(empty),
    entries: empty.entries.bind(empty),
    keys: empty.keys.bind(empty),
    values: empty.values.bind(empty),
    [Symbol.iterator]: empty[Symbol.iterator].bind(empty),
  } as ReadonlySet<string>;
}

/** The ModelSpec of a new (not yet saved) model described by `config`, with its experts in `layout`. */
export function specForNewModel(config: Config, layout: 'per-expert' | 'fused' = 'per-expert'): ModelSpec {
  return specFor(config, layoutNames(layout));
}

export interface FfnWidths {
  /** Dense layers' intermediate size. */
  dense?: number;
  /** Routed experts' intermediate size. */
  expert?: number;
  /** Shared experts' total intermediate size. */
  shared?: number;
}

/**
 * FFN widths from a config.json: dense = intermediate_size; expert = moe_intermediate_size ?? intermediate_size;
 * shared = shared_expert_intermediate_size (Qwen2-MoE) ?? expert width × n_shared_experts (DeepSeek).
 */
export function ffnWidthsFromConfig(config: Config): FfnWidths {
  const num = (k: string): number | undefined => (typeof config[k] === 'number' ? (config[k] as number) : undefined);
  const dense = num('intermediate_size');
  const expert = num('moe_intermediate_size') ?? dense;
  const shared = num('shared_expert_intermediate_size') ?? (expert !== undefined ? expert * (num('n_shared_experts') ?? 1) : undefined);
  return { dense, expert, shared };
}
