/**
 * The CPU causal MoE LM: the decoder graph (decoder.ts) on the CPU ops (src/backend/cpu/cpu-ops.ts) with the CPU
 * MoE block (moe-block.ts: every router including the research zoo, expert offloading, full routing captures).
 * Runs a batch of equal-length sequences; with a KVCache it continues from where the cache ends. Synchronous.
 */
import type { WeightSource } from '../io/weight-source.js';
import type { ModelSpec } from './spec.js';
import type { Weight } from '../tensor/weight.js';
import type { Routing } from '../moe/routers/router.js';
import type { FfnContext, FfnModule, SlotRoutingResult } from '../nn/ffn-module.js';
import { DenseFfn } from '../nn/dense-ffn.js';
import { MoeBlock } from '../moe/moe-block.js';
import { KVCache } from '../infer/kv-cache.js';
import { ExpertCache, type OffloadOptions } from '../infer/offload/expert-cache.js';
import { CpuOps, type CpuExpertSet } from '../backend/cpu/cpu-ops.js';
import { Decoder, type DecoderHooks, type DecoderLayer } from './decoder.js';

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

type H = Float32Array;

export class CausalLM {
  private readonly decoder: Decoder<H, Weight, CpuExpertSet>;
  /** The expert cache when loaded with `offload` (statistics, trace). */
  readonly offload?: ExpertCache;

  constructor(readonly spec: ModelSpec, ck: WeightSource, opts: LoadOptions = {}) {
    const keepBf16 = opts.keepBf16 ?? true;
    if (opts.offload) this.offload = new ExpertCache(ck.dir, opts.offload);
    const ops = new CpuOps();
    const D = spec.hiddenSize;
    this.decoder = new Decoder(ops, spec, ck, (ls, i): FfnModule<H> => (ls.ffn.kind === 'dense'
      ? new DenseFfn(ops, ls.ffn, D, ck, keepBf16)
      : new MoeBlock(ls.ffn, D, ck, keepBf16, i, this.offload)), { keepBf16, onProgress: opts.onProgress });
  }

  /** Layers: norms, attention, and the FFN (a MoeBlock for MoE layers). */
  get layers(): readonly DecoderLayer<H, Weight>[] {
    return this.decoder.layers;
  }

  /** Release the offloaded experts and the weight files they are read from (no-op without offloading). */
  close(): void {
    this.offload?.close();
  }

  newCache(batch: number): KVCache {
    return new KVCache(this.layers.map((l) => l.attn.cacheWidths), batch);
  }

  /**
   * ids: B sequences of S tokens, batch-major. With `cache`, the tokens continue the cached sequences
   * (positions start at cache.length) and are appended to it.
   */
  forward(ids: ArrayLike<number>, B: number, cache = this.newCache(B), capture = false): ForwardResult {
    const cap: Capture | undefined = capture ? { hidden: [], ffnIn: [], ffnOut: [], routing: [], slots: [] } : undefined;
    const hooks: DecoderHooks<H> | undefined = cap && {
      hidden: (i, h) => { cap.hidden[i] = i === this.layers.length ? h : h.slice(); },
      ffn: (_li, y, r) => { cap.ffnIn.push(y); cap.ffnOut.push(r.out); cap.routing.push(r.routing); cap.slots.push(r.slots); },
    };
    // Cross-layer router state (recurrent routers, gating residuals) for this forward's tokens.
    const ffnCtx: FfnContext = { carry: new Map() };
    const { logits } = this.decoder.run(ids, B, cache, ffnCtx, { hooks });
    return { logits, capture: cap };
  }
}
