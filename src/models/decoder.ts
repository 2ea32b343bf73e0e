/**
 * The decoder graph, written once over the op interface (src/backend/device-ops.ts) and run by every backend:
 * embedding → layers of (norm → attention per sequence over the KV cache → residual, norm → FFN/MoE → residual) →
 * final norm → LM head. Recording is synchronous; the CPU CausalLM (causal-lm.ts) reads its results directly, the
 * device model (device-causal-lm.ts) awaits one read of the logits.
 *
 * What a layer's FFN is comes from the caller (`makeFfn`): the CPU MoeBlock (zoo routers, offloading, routing
 * captures) or the DeviceMoeBlock (fused routing + grouped expert kernels).
 */
import type { WeightSource } from '../io/weight-source.js';
import type { ModelSpec, LayerSpec } from './spec.js';
import type { DeviceKVCache, DeviceOps } from '../backend/device-ops.js';
import type { AttentionModule } from '../nn/attention-module.js';
import type { FfnContext, FfnModule, FfnResult } from '../nn/ffn-module.js';
import { Norm } from '../nn/norm.js';
import { GqaAttention } from '../nn/gqa-attention.js';
import { MlaAttention } from '../nn/mla-attention.js';
import { ropeCosSin, type RopeTable } from '../nn/rope.js';
import { withPlainWeights } from '../backend/cpu/weight-store.js';
import { UserError } from '../util/errors.js';

export interface DecoderLayer<H, W> {
  readonly inputNorm: Norm<H, W>;
  readonly attn: AttentionModule<H>;
  readonly postNorm: Norm<H, W>;
  readonly ffn: FfnModule<H>;
}

export interface DecoderLoadOptions {
  /** Keep bf16 matrices compressed (default true). */
  keepBf16?: boolean;
  onProgress?: (done: number, total: number) => void;
}

/** Observers of one forward (captures for tests, analytics and telemetry). */
export interface DecoderHooks<H> {
  /** i = 0: embeddings; 1 … L − 1: after layer i − 1; L: after the final norm. `h` is live: copy what you keep. */
  hidden?(i: number, h: H): void;
  /** Each layer's FFN input and result (released by the decoder after the call unless `keepExperts`). */
  ffn?(layer: number, y: H, r: FfnResult<H>): void;
  /** The hook keeps `r.experts` (it releases them). */
  keepExperts?: boolean;
}

export interface DecoderRunOptions<H> {
  hooks?: DecoderHooks<H>;
  /** Only each sequence's last position through the final norm and LM head (logits [B, V]). */
  lastOnly?: boolean;
}

export class Decoder<H, W, X> {
  readonly layers: DecoderLayer<H, W>[] = [];
  private embed!: W;
  private lmHead!: W;
  private lmHeadBias?: W;
  private finalNorm!: Norm<H, W>;

  constructor(readonly ops: DeviceOps<H, W, X>, readonly spec: ModelSpec, ck: WeightSource,
    makeFfn: (ls: LayerSpec, index: number) => FfnModule<H>, opts: DecoderLoadOptions = {}) {
    const load = (): void => this.load(ck, makeFfn, opts);
    // Weights a backend copies to its own memory are read into ordinary arrays, not the CPU's WASM heap.
    if (ops.uploadsWeights) withPlainWeights(load);
    else load();
  }

  private load(ck: WeightSource, makeFfn: (ls: LayerSpec, index: number) => FfnModule<H>, opts: DecoderLoadOptions): void {
    const { ops, spec } = this;
    const keepBf16 = opts.keepBf16 ?? true;
    const D = spec.hiddenSize;
    const V = spec.vocabSize;
    this.embed = ops.weight(ck.weight(spec.embedding, { keepBf16, shape: [V, D] }));
    spec.layers.forEach((ls, i) => {
      this.layers.push({
        inputNorm: new Norm(ops, ls.inputNorm, D, ck),
        attn: ls.attention.kind === 'gqa'
          ? new GqaAttention(ops, ls.attention, D, ck, spec.maxPositions, keepBf16)
          : new MlaAttention(ops, ls.attention, D, ck, spec.maxPositions, keepBf16),
        postNorm: new Norm(ops, ls.postAttentionNorm, D, ck),
        ffn: makeFfn(ls, i),
      });
      opts.onProgress?.(i + 1, spec.layers.length + 1);
    });
    this.finalNorm = new Norm(ops, spec.finalNorm, D, ck);
    this.lmHead = spec.lmHead === spec.embedding ? this.embed : ops.weight(ck.weight(spec.lmHead, { keepBf16, shape: [V, D] }));
    if (spec.lmHeadBias) this.lmHeadBias = ops.vector(ck.weight(spec.lmHeadBias, { shape: [V] }).data as Float32Array, spec.lmHeadBias);
    opts.onProgress?.(spec.layers.length + 1, spec.layers.length + 1);
  }

  newCache(batch: number): DeviceKVCache<H> {
    return this.ops.newCache(this.layers.map((l) => l.attn.cacheWidths), batch);
  }

  /**
   * ids: B sequences of S tokens, batch-major, continuing `cache` (positions start at cache.length; the tokens are
   * appended). Returns the logits tensor [rows, V] (rows = B·S, or B with `lastOnly`), owned by the caller.
   */
  run(ids: ArrayLike<number>, B: number, cache: DeviceKVCache<H>, ctx: FfnContext, opts: DecoderRunOptions<H> = {}): { logits: H; rows: number } {
    const o = this.ops;
    const S = ids.length / B;
    if (!Number.isInteger(S) || S < 1) throw new UserError(`forward: ${ids.length} ids do not split into ${B} sequences`);
    if (cache.layers[0] && cache.layers[0].length !== B) throw new UserError(`forward: the cache holds ${cache.layers[0].length} sequences, not ${B}`);
    const { hooks, lastOnly } = opts;
    const D = this.spec.hiddenSize;
    const V = this.spec.vocabSize;
    const T = B * S;
    const start = cache.length;
    const idArr = new Int32Array(T);
    for (let i = 0; i < T; i++) {
      const id = ids[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new UserError(`token id ${id} is outside the vocabulary (0..${V - 1})`);
      idArr[i] = id;
    }
    const positions = Array.from({ length: S }, (_, i) => start + i);
    const cosSin = new Map<RopeTable, H>();
    const ropeFor = (t: RopeTable): H => {
      let c = cosSin.get(t);
      if (!c) { c = o.upload(ropeCosSin(t, positions), [S, t.invFreq.length, 2]); cosSin.set(t, c); }
      return c;
    };
    const rm = this.spec.residualMultiplier;
    const h = o.embed(this.embed, idArr, D, this.spec.embeddingMultiplier);
    hooks?.hidden?.(0, h);
    const L = this.layers.length;
    // Each residual add is fused with the norm that reads its result (Norm.addApply: one op, one GPU dispatch): the
    // attention output with the layer's post-attention norm, the FFN output with the next layer's input norm, or
    // with the final norm after the last layer (unless only the last positions go on: then add, slice, norm).
    const fuseFinal = !(lastOnly && S > 1);
    let x: H | undefined = L > 0 ? this.layers[0]!.inputNorm.apply(h, T) : undefined;
    let hn: H | undefined;
    for (const [li, layer] of this.layers.entries()) {
      const cs = ropeFor(layer.attn.rope);
      let a: H;
      if (B === 1) {
        a = layer.attn.forward(x!, S, start, cache.layers[li]![0]!, cs);
      } else {
        a = o.empty([T, D]);
        for (let b = 0; b < B; b++) {
          const xs = o.sliceRows(x!, D, b * S, S);
          const as = layer.attn.forward(xs, S, start, cache.layers[li]![b]!, cs);
          o.writeRows(a, D, b * S, as, S);
          o.release(xs, as);
        }
      }
      o.release(x);
      const y = layer.postNorm.addApply(h, a, T, rm);
      o.release(a);
      const r = layer.ffn.forward(y, T, ctx);
      hooks?.ffn?.(li, y, r);
      const next = this.layers[li + 1];
      if (next) x = next.inputNorm.addApply(h, r.out, T, rm);
      else if (fuseFinal) hn = this.finalNorm.addApply(h, r.out, T, rm);
      else o.addScaled(h, r.out, T * D, rm);
      o.release(y, r.out);
      if (!hooks?.keepExperts) o.release(r.experts);
      if (li < L - 1) hooks?.hidden?.(li + 1, h);
      o.flush();
    }
    for (const c of cosSin.values()) o.release(c);
    let rows = T;
    if (hn === undefined) {
      let last = h;
      if (lastOnly && S > 1) {
        rows = B;
        last = o.empty([B, D]);
        for (let b = 0; b < B; b++) {
          const r = o.sliceRows(h, D, b * S + S - 1, 1);
          o.writeRows(last, D, b, r, 1);
          o.release(r);
        }
        o.release(h);
      }
      hn = this.finalNorm.apply(last, rows);
      o.release(last);
    } else {
      o.release(h);
    }
    hooks?.hidden?.(L, hn);
    const logits = o.linear(hn, rows, D, this.lmHead, this.lmHeadBias);
    o.release(hn);
    if (this.spec.logitsScaling !== 1) o.scale(logits, rows * V, 1 / this.spec.logitsScaling);
    return { logits, rows };
  }
}
