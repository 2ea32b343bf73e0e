/**
 * Which tensors an attention layer reads from a checkpoint, in one place for every backend: the CPU modules
 * (gqa-attention.ts, mla-attention.ts) and the device graph (src/models/device-causal-lm.ts) load through these.
 */
import type { WeightSource } from '../io/weight-source.js';
import type { GqaAttentionSpec, MlaAttentionSpec } from '../models/spec.js';
import type { Weight } from '../tensor/weight.js';

export interface GqaWeights {
  q: Weight; k: Weight; v: Weight; o: Weight;
  qb?: Weight; kb?: Weight; vb?: Weight; ob?: Weight;
  /** q/k RMSNorm weights: [headDim] per head ('head') or the whole projection ('full'). */
  qNorm?: Float32Array; kNorm?: Float32Array;
  /** GPT-OSS attention sinks [H]. */
  sinks?: Float32Array;
}

export function loadGqaWeights(spec: GqaAttentionSpec, D: number, ck: WeightSource, keepBf16: boolean): GqaWeights {
  const { prefix: p, numHeads: H, numKvHeads: KVH, headDim: hd } = spec;
  const m = { keepBf16 };
  const w: GqaWeights = {
    q: ck.weight(`${p}.q_proj.weight`, { ...m, shape: [H * hd, D] }),
    k: ck.weight(`${p}.k_proj.weight`, { ...m, shape: [KVH * hd, D] }),
    v: ck.weight(`${p}.v_proj.weight`, { ...m, shape: [KVH * hd, D] }),
    o: ck.weight(`${p}.o_proj.weight`, { ...m, shape: [D, H * hd] }),
  };
  if (spec.qkvBias) {
    w.qb = ck.weight(`${p}.q_proj.bias`, { shape: [H * hd] });
    w.kb = ck.weight(`${p}.k_proj.bias`, { shape: [KVH * hd] });
    w.vb = ck.weight(`${p}.v_proj.bias`, { shape: [KVH * hd] });
  }
  if (spec.oBias) w.ob = ck.weight(`${p}.o_proj.bias`, { shape: [D] });
  if (spec.qkNorm !== 'none') {
    const qn = spec.qkNorm === 'head' ? hd : H * hd;
    const kn = spec.qkNorm === 'head' ? hd : KVH * hd;
    w.qNorm = ck.weight(`${p}.q_norm.weight`, { shape: [qn] }).data as Float32Array;
    w.kNorm = ck.weight(`${p}.k_norm.weight`, { shape: [kn] }).data as Float32Array;
  }
  if (spec.sinks) w.sinks = ck.weight(`${p}.sinks`, { shape: [H] }).data as Float32Array;
  return w;
}

export interface MlaWeights {
  /** Direct query projection (no q LoRA) … */
  q?: Weight;
  /** … or the q LoRA: q_a_proj (+ bias), its RMSNorm, q_b_proj. */
  qa?: Weight; qaBias?: Weight; qaNorm?: Float32Array; qb?: Weight;
  kva: Weight; kvaBias?: Weight; kvaNorm: Float32Array; kvb: Weight;
  o: Weight; oBias?: Weight;
}

export function loadMlaWeights(spec: MlaAttentionSpec, D: number, ck: WeightSource, keepBf16: boolean): MlaWeights {
  const { prefix: p, numHeads: H, qLoraRank, kvLoraRank: R, qkNopeDim: dn, qkRopeDim: dr, vHeadDim: dv } = spec;
  const m = { keepBf16 };
  const bias = spec.bias ?? false;
  const qOut = H * (dn + dr);
  const w: Partial<MlaWeights> = {};
  if (qLoraRank === null) {
    w.q = ck.weight(`${p}.q_proj.weight`, { ...m, shape: [qOut, D] });
  } else {
    w.qa = ck.weight(`${p}.q_a_proj.weight`, { ...m, shape: [qLoraRank, D] });
    if (bias) w.qaBias = ck.weight(`${p}.q_a_proj.bias`, { shape: [qLoraRank] });
    w.qaNorm = ck.weight(`${p}.q_a_layernorm.weight`, { shape: [qLoraRank] }).data as Float32Array;
    w.qb = ck.weight(`${p}.q_b_proj.weight`, { ...m, shape: [qOut, qLoraRank] });
  }
  w.kva = ck.weight(`${p}.kv_a_proj_with_mqa.weight`, { ...m, shape: [R + dr, D] });
  if (bias) w.kvaBias = ck.weight(`${p}.kv_a_proj_with_mqa.bias`, { shape: [R + dr] });
  w.kvaNorm = ck.weight(`${p}.kv_a_layernorm.weight`, { shape: [R] }).data as Float32Array;
  w.kvb = ck.weight(`${p}.kv_b_proj.weight`, { ...m, shape: [H * (dn + dv), R] });
  w.o = ck.weight(`${p}.o_proj.weight`, { ...m, shape: [D, H * dv] });
  if (bias) w.oBias = ck.weight(`${p}.o_proj.bias`, { shape: [D] });
  if (spec.rope.dim !== dr) throw new Error(`MLA ${p}: rope dim ${spec.rope.dim} must equal qk_rope_head_dim ${dr}`);
  return w as MlaWeights;
}
