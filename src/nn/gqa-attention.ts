/**
 * Multi-head attention with grouped KV heads (GQA/MQA): q/k/v projections (optional biases), optional q/k RMSNorm
 * (per head: Qwen3; whole projection: OLMoE), RoPE, causal softmax (optional sliding window and attention sinks),
 * output projection.
 */
import type { WeightSource } from '../io/weight-source.js';
import type { GqaAttentionSpec } from '../models/spec.js';
import type { Weight } from '../tensor/weight.js';
import type { LayerKVCache } from '../infer/kv-cache.js';
import type { AttentionModule } from './attention-module.js';
import { linear } from '../backend/cpu/linear.js';
import { rmsNorm } from '../backend/cpu/norm.js';
import { attention } from '../backend/cpu/attention.js';
import { ropeTable, rope, type RopeTable } from './rope.js';

export class GqaAttention implements AttentionModule {
  readonly cacheWidths: { k: number; v: number };
  private q: Weight; private k: Weight; private v: Weight; private o: Weight;
  private qb?: Weight; private kb?: Weight; private vb?: Weight; private ob?: Weight;
  private qNorm?: Float32Array; private kNorm?: Float32Array;
  private sinks?: Float32Array;
  private rope: RopeTable;

  constructor(private spec: GqaAttentionSpec, D: number, ck: WeightSource, maxPositions: number, keepBf16: boolean) {
    const { prefix: p, numHeads: H, numKvHeads: KVH, headDim: hd } = spec;
    const m = { keepBf16 };
    this.q = ck.weight(`${p}.q_proj.weight`, { ...m, shape: [H * hd, D] });
    this.k = ck.weight(`${p}.k_proj.weight`, { ...m, shape: [KVH * hd, D] });
    this.v = ck.weight(`${p}.v_proj.weight`, { ...m, shape: [KVH * hd, D] });
    this.o = ck.weight(`${p}.o_proj.weight`, { ...m, shape: [D, H * hd] });
    if (spec.qkvBias) {
      this.qb = ck.weight(`${p}.q_proj.bias`, { shape: [H * hd] });
      this.kb = ck.weight(`${p}.k_proj.bias`, { shape: [KVH * hd] });
      this.vb = ck.weight(`${p}.v_proj.bias`, { shape: [KVH * hd] });
    }
    if (spec.oBias) this.ob = ck.weight(`${p}.o_proj.bias`, { shape: [D] });
    if (spec.qkNorm !== 'none') {
      const qn = spec.qkNorm === 'head' ? hd : H * hd;
      const kn = spec.qkNorm === 'head' ? hd : KVH * hd;
      this.qNorm = ck.weight(`${p}.q_norm.weight`, { shape: [qn] }).data as Float32Array;
      this.kNorm = ck.weight(`${p}.k_norm.weight`, { shape: [kn] }).data as Float32Array;
    }
    if (spec.sinks) this.sinks = ck.weight(`${p}.sinks`, { shape: [H] }).data as Float32Array;
    this.rope = ropeTable(spec.rope, maxPositions);
    this.cacheWidths = { k: KVH * hd, v: KVH * hd };
  }

  forward(x: Float32Array, S: number, start: number, cache: LayerKVCache): Float32Array {
    const { numHeads: H, numKvHeads: KVH, headDim: hd } = this.spec;
    const D = this.o.shape[0]!;
    let q = linear(x, S, D, this.q, this.qb);
    let k = linear(x, S, D, this.k, this.kb);
    const v = linear(x, S, D, this.v, this.vb);
    if (this.qNorm && this.kNorm) {
      q = rmsNorm(q, this.qNorm, this.spec.qkNormEps);
      k = rmsNorm(k, this.kNorm, this.spec.qkNormEps);
    }
    const pos = Array.from({ length: S }, (_, i) => start + i);
    rope(this.rope, q, S, H, hd, pos);
    rope(this.rope, k, S, KVH, hd, pos);
    cache.append(k, v, S);
    const a = attention(q, S, H, hd, cache.k, cache.v, cache.length, KVH, hd, start, {
      scale: this.spec.scale, window: this.spec.slidingWindow, sinks: this.sinks,
    });
    return linear(a, S, H * hd, this.o, this.ob);
  }
}
