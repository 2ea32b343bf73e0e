/**
 * A decoder-only MoE language model assembled from a ModelSpec: embedding → layers of
 * (norm → attention → residual, norm → FFN/MoE → residual) → final norm → LM head.
 * Runs a batch of equal-length sequences; with a KVCache it continues from where the cache ends.
 */
import type { WeightSource } from '../io/weight-source.js';
import type { ModelSpec, LayerSpec } from './spec.js';
import type { Weight } from '../tensor/weight.js';
import type { Routing } from '../moe/routers/router.js';
import type { AttentionModule } from '../nn/attention-module.js';
import type { FfnContext, FfnModule, SlotRoutingResult } from '../nn/ffn-module.js';
import { Norm } from '../nn/norm.js';
import { GqaAttention } from '../nn/gqa-attention.js';
import { MlaAttention } from '../nn/mla-attention.js';
import { DenseFfn } from '../nn/dense-ffn.js';
import { MoeBlock } from '../moe/moe-block.js';
import { linear } from '../backend/cpu/linear.js';
import { KVCache } from '../infer/kv-cache.js';
import { UserError } from '../util/errors.js';
import { weightToF32 } from '../tensor/weight.js';
import { ExpertCache, type OffloadOptions } from '../infer/offload/expert-cache.js';

/** Per-layer intermediates recorded when `capture` is on (for tests, analytics and telemetry). */
export interface Capture {
  /** hidden_states.i: [B·S, D] for i = 0..L (0 = embeddings, L = after the final norm). */
  hidden: Float32Array[];
  /** Input and output of each layer's FFN / MoE block, [B·S, D]. */
  ffnIn: Float32Array[];
  ffnOut: Float32Array[];
  /** Routing of each MoE layer (undefined for dense layers). Tokens ordered batch-major. */
  routing: (Routing | undefined)[];
  /** Slots of each MoE layer run by a zoo (slot) router (undefined for dense and fixed-k layers). */
  slots: (SlotRoutingResult | undefined)[];
}

export interface ForwardResult {
  /** [B, S, V] */
  logits: Float32Array;
  capture?: Capture;
}

class DecoderLayer {
  readonly inputNorm: Norm;
  readonly attn: AttentionModule;
  readonly postNorm: Norm;
  readonly ffn: FfnModule;
  constructor(readonly spec: LayerSpec, D: number, ck: WeightSource, maxPositions: number, keepBf16: boolean, index = 0, offload?: ExpertCache) {
    this.inputNorm = new Norm(spec.inputNorm, D, ck);
    this.attn = spec.attention.kind === 'gqa'
      ? new GqaAttention(spec.attention, D, ck, maxPositions, keepBf16)
      : new MlaAttention(spec.attention, D, ck, maxPositions, keepBf16);
    this.postNorm = new Norm(spec.postAttentionNorm, D, ck);
    this.ffn = spec.ffn.kind === 'dense' ? new DenseFfn(spec.ffn, D, ck, keepBf16) : new MoeBlock(spec.ffn, D, ck, keepBf16, index, offload);
  }
}

export interface LoadOptions {
  /** Keep bf16 matrices compressed in memory (default true). */
  keepBf16?: boolean;
  onProgress?: (done: number, total: number) => void;
  /**
   * Expert offloading: routed experts stay on disk and are read on demand into a cache of at most `budgetBytes`
   * (src/infer/offload/). The model keeps its own handles on the weight files until `close()`.
   */
  offload?: OffloadOptions;
}

export class CausalLM {
  readonly layers: DecoderLayer[] = [];
  private embed: Weight;
  private finalNorm: Norm;
  private lmHead: Weight;
  private lmHeadBias?: Weight;
  /** The expert cache when loaded with `offload` (statistics, trace). */
  readonly offload?: ExpertCache;

  constructor(readonly spec: ModelSpec, ck: WeightSource, opts: LoadOptions = {}) {
    const keepBf16 = opts.keepBf16 ?? true;
    if (opts.offload) this.offload = new ExpertCache(ck.dir, opts.offload);
    const D = spec.hiddenSize;
    const V = spec.vocabSize;
    this.embed = ck.weight(spec.embedding, { keepBf16, shape: [V, D] });
    spec.layers.forEach((ls, i) => {
      this.layers.push(new DecoderLayer(ls, D, ck, spec.maxPositions, keepBf16, i, this.offload));
      opts.onProgress?.(i + 1, spec.layers.length + 1);
    });
    this.finalNorm = new Norm(spec.finalNorm, D, ck);
    this.lmHead = spec.lmHead === spec.embedding ? this.embed : ck.weight(spec.lmHead, { keepBf16, shape: [V, D] });
    if (spec.lmHeadBias) this.lmHeadBias = ck.weight(spec.lmHeadBias, { shape: [V] });
    opts.onProgress?.(spec.layers.length + 1, spec.layers.length + 1);
  }

  /** Release the offloaded experts and the weight files they are read from (no-op without offloading). */
  close(): void {
    this.offload?.close();
  }

  newCache(batch: number): KVCache {
    return new KVCache(this.layers.map((l) => l.attn.cacheWidths), batch);
  }

  /** Embedding rows for token ids (× embeddingMultiplier). */
  private embedTokens(ids: ArrayLike<number>): Float32Array {
    const D = this.spec.hiddenSize;
    const V = this.spec.vocabSize;
    const out = new Float32Array(ids.length * D);
    const table = this.embed.dtype === 'f32' ? (this.embed.data as Float32Array) : undefined;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new UserError(`token id ${id} is outside the vocabulary (0..${V - 1})`);
      const row = table
        ? table.subarray(id * D, id * D + D)
        : weightToF32({ ...this.embed, data: this.embed.data.subarray(id * D, id * D + D), shape: [1, D] });
      out.set(row, i * D);
    }
    const m = this.spec.embeddingMultiplier;
    if (m !== 1) for (let i = 0; i < out.length; i++) out[i]! *= m;
    return out;
  }

  /**
   * ids: B sequences of S tokens, batch-major. With `cache`, the tokens continue the cached sequences
   * (positions start at cache.length) and are appended to it.
   */
  forward(ids: ArrayLike<number>, B: number, cache = this.newCache(B), capture = false): ForwardResult {
    const S = ids.length / B;
    if (!Number.isInteger(S) || S < 1) throw new UserError(`forward: ${ids.length} ids do not split into ${B} sequences`);
    const D = this.spec.hiddenSize;
    const T = B * S;
    const start = cache.length;
    let h = this.embedTokens(ids);
    const cap: Capture | undefined = capture ? { hidden: [h.slice()], ffnIn: [], ffnOut: [], routing: [], slots: [] } : undefined;
    const rm = this.spec.residualMultiplier;
    // Cross-layer router state (recurrent routers, gating residuals) for this forward's tokens.
    const ffnCtx: FfnContext = { carry: new Map() };
    this.layers.forEach((layer, li) => {
      const x = layer.inputNorm.apply(h);
      const a = new Float32Array(T * D);
      for (let b = 0; b < B; b++) {
        const seq = x.subarray(b * S * D, (b + 1) * S * D);
        a.set(layer.attn.forward(seq, S, start, cache.layers[li]![b]!), b * S * D);
      }
      for (let i = 0; i < h.length; i++) h[i]! += a[i]! * rm;
      const y = layer.postNorm.apply(h);
      const r = layer.ffn.forward(y, T, ffnCtx);
      if (cap) { cap.ffnIn.push(y); cap.ffnOut.push(r.out); cap.routing.push(r.routing); cap.slots.push(r.slots); }
      for (let i = 0; i < h.length; i++) h[i]! += r.out[i]! * rm;
      if (cap && li < this.layers.length - 1) cap.hidden.push(h.slice());
    });
    h = this.finalNorm.apply(h);
    if (cap) cap.hidden.push(h);
    const logits = linear(h, T, D, this.lmHead, this.lmHeadBias);
    const ls = this.spec.logitsScaling;
    if (ls !== 1) for (let i = 0; i < logits.length; i++) logits[i]! /= ls;
    return { logits, capture: cap };
  }
}
