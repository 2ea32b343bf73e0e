/**
 * The causal MoE LM on a device backend: the decoder graph (decoder.ts, shared with the CPU CausalLM) with the device
 * MoE block (src/moe/device-moe-block.ts: router GEMM → fused scoring + top-k → grouped expert kernels → combine).
 * Weights are resident on the device from load on; a forward reads back only the logits (and, when asked, each MoE
 * layer's chosen experts for analytics). The research (zoo) routers and expert offloading are CPU-only: a clear
 * error says so.
 */
import type { WeightSource } from '../io/weight-source.js';
import type { ModelSpec } from './spec.js';
import { isDeviceRouterSpec, type DeviceKVCache, type DeviceOps } from '../backend/device-ops.js';
import type { FfnModule } from '../nn/ffn-module.js';
import { DenseFfn } from '../nn/dense-ffn.js';
import { DeviceMoeBlock } from '../moe/device-moe-block.js';
import { Decoder, type DecoderLoadOptions } from './decoder.js';
import { UserError } from '../util/errors.js';

/** Why a spec cannot run on a device backend, or undefined when it can. */
export function deviceUnsupportedReason(spec: ModelSpec): string | undefined {
  for (const [i, l] of spec.layers.entries()) {
    if (l.ffn.kind === 'moe' && !isDeviceRouterSpec(l.ffn.router)) {
      return `layer ${i} uses the research router '${l.ffn.router.kind}', which runs on the CPU only`;
    }
  }
  return undefined;
}

export type DeviceLoadOptions = Pick<DecoderLoadOptions, 'onProgress'>;

export interface DeviceForwardOptions {
  /** Read back each MoE layer's chosen experts [T, k] (undefined for dense layers). */
  captureExperts?: boolean;
  /** Compute and read back only each sequence's last-position logits ([B, 1, V]) — what sampling needs. */
  lastOnly?: boolean;
}

export interface DeviceForwardResult {
  /** [B, S, V], or [B, 1, V] with `lastOnly` */
  logits: Float32Array;
  experts?: (Int32Array | undefined)[];
}

export class DeviceCausalLM<H, W, X> {
  private readonly decoder: Decoder<H, W, X>;

  constructor(readonly ops: DeviceOps<H, W, X>, readonly spec: ModelSpec, ck: WeightSource, opts: DeviceLoadOptions = {}) {
    const why = deviceUnsupportedReason(spec);
    if (why) throw new UserError(`${ops.name}: ${why}`);
    const D = spec.hiddenSize;
    this.decoder = new Decoder(ops, spec, ck, (ls): FfnModule<H> => (ls.ffn.kind === 'dense'
      ? new DenseFfn(ops, ls.ffn, D, ck, true)
      : new DeviceMoeBlock(ops, ls.ffn, D, ck, true)), { keepBf16: true, onProgress: opts.onProgress });
  }

  newCache(batch: number): DeviceKVCache<H> {
    return this.decoder.newCache(batch);
  }

  /**
   * ids: B sequences of S tokens, batch-major. With `cache`, the tokens continue the cached sequences (positions
   * start at cache.length) and are appended to it.
   */
  async forward(ids: ArrayLike<number>, B: number, cache: DeviceKVCache<H> = this.newCache(B), opts: DeviceForwardOptions = {}): Promise<DeviceForwardResult> {
    const o = this.ops;
    const captured: (H | undefined)[] = [];
    const { logits: lh, rows } = this.decoder.run(ids, B, cache, { carry: new Map() }, {
      lastOnly: opts.lastOnly,
      hooks: opts.captureExperts ? { keepExperts: true, ffn: (li, _y, r) => { captured[li] = r.experts; } } : undefined,
    });
    const logits = await o.read(lh, rows * this.spec.vocabSize);
    o.release(lh);
    let experts: (Int32Array | undefined)[] | undefined;
    if (opts.captureExperts) {
      experts = [];
      for (const [li, ls] of this.spec.layers.entries()) {
        const e = captured[li];
        experts.push(e !== undefined && ls.ffn.kind === 'moe' ? await o.readI32(e, ids.length * ls.ffn.topK) : undefined);
        o.release(e);
      }
    }
    return { logits, experts };
  }
}
