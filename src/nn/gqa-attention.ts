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
import { loadGqaWeights } from './attention-weights.js';

export class GqaAttention implements AttentionModule {
  readonly cacheWidths: { k: number; v: number };
  private q: Weight; private k: Weight; private v: Weight; private o: Weight;
  private qb?: Weight; private kb?: Weight; private vb?: Weight; private ob?: Weight;
  private qNorm?: Float32Array; private kNorm?: Float32Array;
  private sinks?: Float32Array;
  private rope: RopeTable;

  constructor(private spec: GqaAttentionSpec, D: number, ck: WeightSource, maxPositions: number, keepBf16: boolean) {
    const w = loadGqaWeights(spec, D, ck, keepBf16);
    this.q = w.q; this.k = w.k; this.v = w.v; this.o = w.o;
    this.qb = w.qb; this.kb = w.kb; this.vb = w.vb; this.ob = w.ob;
    this.qNorm = w.qNorm; this.kNorm = w.kNorm; this.sinks = w.sinks;
    this.rope = ropeTable(spec.rope, maxPositions);
    this.cacheWidths = { k: spec.numKvHeads * spec.headDim, v: spec.numKvHeads * spec.headDim };
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
