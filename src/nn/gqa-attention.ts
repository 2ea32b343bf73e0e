/**
 * Multi-head attention with grouped KV heads (GQA/MQA): q/k/v projections (optional biases), optional q/k RMSNorm
 * (per head: Qwen3; whole projection: OLMoE), RoPE, causal softmax (optional sliding window and attention sinks),
 * output projection. Written once over the op interface (src/backend/device-ops.ts): the CPU and WebGPU backends run
 * this same code. On a backend that `fusesProjections` (WebGPU), q, k and v are one stacked projection whose output
 * goes through `qkvToCache` (q/k norm, RoPE, KV cache write in one op) — two dispatches where there were seven.
 * `clipQkv` (OLMoE) clamps q and k after a whole-projection norm, and v, before RoPE: one `clamp` op per tensor.
 */
import type { WeightSource } from '../io/weight-source.js';
import type { GqaAttentionSpec } from '../models/spec.js';
import type { DeviceLayerCache, DeviceOps } from '../backend/device-ops.js';
import type { AttentionModule } from './attention-module.js';
import { ropeTable, type RopeTable } from './rope.js';
import { loadGqaWeights } from './attention-weights.js';
import { concatRows, type Weight } from '../tensor/weight.js';

export class GqaAttention<H, W> implements AttentionModule<H> {
  readonly cacheWidths: { k: number; v: number };
  readonly rope: RopeTable;
  private q?: W; private k?: W; private v?: W; private o: W;
  private qb?: W; private kb?: W; private vb?: W; private ob?: W;
  /** q, k and v stacked into one projection (backends that fuse projections; per-head or no q/k norm). */
  private qkv?: W; private qkvb?: W;
  private qNorm?: W; private kNorm?: W;
  private sinks?: W;

  constructor(private readonly ops: DeviceOps<H, W, unknown>, private readonly spec: GqaAttentionSpec, private readonly D: number,
    ck: WeightSource, maxPositions: number, keepBf16: boolean) {
    if (spec.clipQkv != null && spec.qkNorm === 'head') {
      // The per-head norm is fused with RoPE, so there is no point between them to clamp at; no architecture asks.
      throw new Error(`${spec.prefix}: clipQkv with a per-head q/k norm is not implemented`);
    }
    const w = loadGqaWeights(spec, D, ck, keepBf16);
    const vec = (a: Float32Array | undefined, name: string): W | undefined => (a ? ops.vector(a, `${spec.prefix}.${name}`) : undefined);
    const bias = (b: typeof w.qb): W | undefined => (b ? ops.vector(b.data as Float32Array, b.name) : undefined);
    // One projection instead of three where the backend prefers it — unless the q/k norm spans the whole projection
    // (it runs between the projection and RoPE with its own kernels) or the parts do not stack (dtypes).
    const stack = [w.q, w.k, w.v];
    const biases = [w.qb, w.kb, w.vb];
    const fuse = ops.fusesProjections && spec.qkNorm !== 'full' && stack.every((m) => m.dtype === w.q.dtype)
      && (biases.every((b) => b === undefined) || biases.every((b) => b !== undefined && b.dtype === 'f32'));
    if (fuse) {
      this.qkv = ops.weight(concatRows(stack, `${spec.prefix}.qkv_proj.weight`));
      if (w.qb) this.qkvb = ops.vector(concatRows(biases as Weight[], `${spec.prefix}.qkv_proj.bias`).data as Float32Array, `${spec.prefix}.qkv_proj.bias`);
    } else {
      this.q = ops.weight(w.q); this.k = ops.weight(w.k); this.v = ops.weight(w.v);
      this.qb = bias(w.qb); this.kb = bias(w.kb); this.vb = bias(w.vb);
    }
    this.o = ops.weight(w.o);
    this.ob = bias(w.ob);
    this.qNorm = vec(w.qNorm, 'q_norm'); this.kNorm = vec(w.kNorm, 'k_norm'); this.sinks = vec(w.sinks, 'sinks');
    this.rope = ropeTable(spec.rope, maxPositions);
    this.cacheWidths = { k: spec.numKvHeads * spec.headDim, v: spec.numKvHeads * spec.headDim };
  }

  forward(x: H, S: number, start: number, cache: DeviceLayerCache<H>, cosSin: H): H {
    const o = this.ops;
    const { numHeads: Hh, numKvHeads: KVH, headDim: hd } = this.spec;
    const D = this.D;
    const eps = this.spec.qkNormEps;
    const perHead = this.spec.qkNorm === 'head' && this.qNorm && this.kNorm ? { q: this.qNorm, k: this.kNorm, eps } : undefined;
    const half = this.rope.invFreq.length;
    const clip = this.spec.clipQkv;
    let q: H;
    if (this.qkv) {
      const qkv = o.linear(x, S, D, this.qkv, this.qkvb);
      // Without a q/k norm, clamping the stacked projection clamps q, k and v.
      if (clip != null) o.clamp(qkv, S * (Hh + 2 * KVH) * hd, clip);
      q = o.qkvToCache(qkv, S, Hh, KVH, hd, cosSin, half, this.rope.interleaved, cache, perHead);
      o.release(qkv);
    } else {
      q = o.linear(x, S, D, this.q!, this.qb);
      let k = o.linear(x, S, D, this.k!, this.kb);
      const v = o.linear(x, S, D, this.v!, this.vb);
      if (this.qNorm && this.kNorm && !perHead) {
        // Over the whole projection (OLMoE): its own kernels; per head, the norm is fused with RoPE below.
        const qn = o.rmsNorm(q, S, Hh * hd, this.qNorm, eps);
        const kn = o.rmsNorm(k, S, KVH * hd, this.kNorm, eps);
        o.release(q, k);
        q = qn; k = kn;
      }
      if (clip != null) {
        o.clamp(q, S * Hh * hd, clip);
        o.clamp(k, S * KVH * hd, clip);
        o.clamp(v, S * KVH * hd, clip);
      }
      o.qkNormRope(q, k, S, Hh, KVH, hd, cosSin, half, this.rope.interleaved, perHead);
      cache.append(k, v, S);
      o.release(k, v);
    }
    const att = o.attention(q, S, Hh, hd, cache.k, cache.v, cache.length, KVH, hd, start, {
      scale: this.spec.scale, window: this.spec.slidingWindow, sinks: this.sinks,
    });
    o.release(q);
    const out = o.linear(att, S, Hh * hd, this.o, this.ob);
    o.release(att);
    return out;
  }
}
