/**
 * The device op interface (src/backend/device-ops.ts) on WebGPU: handles are pooled GPU tensors, weights are uploaded
 * once at load (bf16 stays bf16, f32 optionally stored as f16), a layer's experts are stacked into [E, F, D] buffers
 * so the grouped expert kernels reach all of them in one dispatch. Nothing is read back until `read`.
 */
import type { Weight } from '../../tensor/weight.js';
import type { ActivationSpec, DeviceKVCache, DeviceLayerCache, DeviceOps, DeviceRouterSpec, ExpertSetSource } from '../device-ops.js';
import { GpuContext, type GpuTensor } from './context.js';
import { uploadF32, uploadStacked, uploadWeight, type GpuWeight } from './weights.js';
import { linear } from './kernels/matmul.js';
import { addNorm, rmsNorm, layerNorm } from './kernels/norm.js';
import { addScaled, addSigmoidGated, scaleInPlace, clampInPlace, gatedAct, embed, copyCols } from './kernels/elementwise.js';
import { applyRopeGpu } from './kernels/rope.js';
import { qkNormRopeGpu, qkvToCacheGpu, QK_NORM_ROPE_MAX_HD } from './kernels/qk-norm-rope.js';
import { attentionGpu } from './kernels/attention.js';
import { routeGpu } from './kernels/router.js';
import { moeExpertsGpu, type GpuExpertSet } from './kernels/moe.js';
import { coopExpertsFit } from './kernels/coop-gemm.js';
import { GpuKVCache } from './kv-cache.js';
import { UserError } from '../../util/errors.js';

export interface WebGpuOpsOptions {
  /**
   * Store matrices (f32 or bf16) as f16 on the GPU: half the memory and bandwidth of f32, and on a device with
   * subgroup matrices the multi-row matmuls run on tensor cores (activations rounded to f16 there). Accumulation
   * stays f32; router weights stay f32.
   */
  f16?: boolean;
  /**
   * Where f16 and bf16 matmuls use tensor cores (devices with subgroup matrices; f16 weights round the activations to
   * f16, bf16 weights split them into f16 hi + lo parts and keep f32-path accuracy): 'auto' (default) for multi-row
   * products (prefill: linears with > 8 rows, expert chunks with > 64 slots), 'always' for every such matmul whose
   * shape fits (tests run the whole graph through the tensor-core kernels this way), 'off' never.
   */
  tensorCores?: 'auto' | 'always' | 'off';
}


/** Dispatches recorded before a layer boundary submits them (see GpuContext.flushIfBusy). */
export const FLUSH_MIN_DISPATCHES = 48;

export class WebGpuOps implements DeviceOps<GpuTensor, GpuWeight, GpuExpertSet> {
  readonly name = 'webgpu';
  readonly uploadsWeights = true;
  /** One q/k/v projection instead of three (fewer dispatches; the weights are uploaded anyway). */
  readonly fusesProjections = true;
  constructor(readonly ctx: GpuContext, readonly opts: WebGpuOpsOptions = {}) {}

  static async create(opts: WebGpuOpsOptions = {}): Promise<WebGpuOps> {
    return new WebGpuOps(await GpuContext.create({ subgroupMatrix: opts.tensorCores !== 'off' }), opts);
  }

  /**
   * Every kernel binds a weight whole, so it must fit one storage binding: a clear error at load (naming the tensor,
   * its size and the adapter's limit) instead of a failed dispatch later.
   */
  private checkFits(name: string, shape: readonly number[], bytesPer: number, count = 1): void {
    const bytes = shape.reduce((a, b) => a * b, 1) * bytesPer * count;
    if (bytes > this.ctx.maxBinding) {
      const gib = (b: number): string => `${(b / 2 ** 30).toFixed(2)} GiB`;
      throw new UserError(`--device webgpu: ${name} [${count > 1 ? `${count}, ` : ''}${shape.join(', ')}] takes ${gib(bytes)}, more than the `
        + `adapter's largest storage binding (${gib(this.ctx.maxBinding)})${bytesPer === 4 ? '; --f16 halves it' : ''}`);
    }
  }

  weight(w: Weight, exact = false): GpuWeight {
    const f16 = !exact && this.opts.f16 && w.shape.length >= 2;
    this.checkFits(w.name, w.shape, w.dtype === 'bf16' || f16 ? 2 : 4);
    return uploadWeight(this.ctx, w, { f16: !exact && this.opts.f16 });
  }
  vector(data: Float32Array, name: string): GpuWeight { return uploadF32(this.ctx, data, name); }
  experts(src: ExpertSetSource, name: string): GpuExpertSet {
    const o = { f16: this.opts.f16 };
    const per = src.gate.every((w) => w.dtype === 'bf16') || this.opts.f16 ? 2 : 4;
    this.checkFits(`${name} (stacked gate/up/down)`, src.gate[0]!.shape, per, src.E);
    const set: GpuExpertSet = {
      E: src.E, D: src.D, F: src.F,
      gate: uploadStacked(this.ctx, src.gate, `${name}.gate`, o),
      up: uploadStacked(this.ctx, src.up, `${name}.up`, o),
      down: uploadStacked(this.ctx, src.down, `${name}.down`, o),
    };
    if (src.gateBias) set.gateBias = uploadStacked(this.ctx, src.gateBias, `${name}.gate_bias`);
    if (src.upBias) set.upBias = uploadStacked(this.ctx, src.upBias, `${name}.up_bias`);
    if (src.downBias) set.downBias = uploadStacked(this.ctx, src.downBias, `${name}.down_bias`);
    return set;
  }

  upload(data: Float32Array | Int32Array, shape: readonly number[]): GpuTensor { return this.ctx.upload(data, shape); }
  read(h: GpuTensor, n: number): Promise<Float32Array> { return this.ctx.read(h, n); }
  readI32(h: GpuTensor, n: number): Promise<Int32Array> { return this.ctx.readI32(h, n); }
  release(...hs: (GpuTensor | undefined)[]): void { this.ctx.release(...hs); }
  newCache(widths: readonly { k: number; v: number }[], batch: number): DeviceKVCache<GpuTensor> {
    return new GpuKVCache(this.ctx, [...widths], batch);
  }
  sliceRows(x: GpuTensor, width: number, from: number, count: number): GpuTensor {
    const t = this.ctx.tensor([count, width]);
    this.ctx.copy(x, from * width * 4, t, 0, count * width * 4);
    return t;
  }
  writeRows(dst: GpuTensor, width: number, at: number, src: GpuTensor, count: number): void {
    this.ctx.copy(src, 0, dst, at * width * 4, count * width * 4);
  }
  empty(shape: readonly number[]): GpuTensor { return this.ctx.tensor(shape); }

  embed(table: GpuWeight, ids: Int32Array, D: number, mult: number): GpuTensor {
    const idT = this.ctx.upload(ids, [ids.length]);
    const out = embed(this.ctx, table, idT, ids.length, D, mult);
    this.ctx.release(idT);
    return out;
  }
  linear(x: GpuTensor, M: number, K: number, w: GpuWeight, bias?: GpuWeight): GpuTensor {
    return linear(this.ctx, x, M, K, w, bias, undefined, { tensorCores: this.opts.tensorCores === 'always' ? 'always' : 'auto' });
  }
  rmsNorm(x: GpuTensor, rows: number, _width: number, w: GpuWeight, eps: number): GpuTensor { return rmsNorm(this.ctx, x, rows, w, eps); }
  layerNorm(x: GpuTensor, rows: number, _width: number, w: GpuWeight, b: GpuWeight | undefined, eps: number): GpuTensor {
    return layerNorm(this.ctx, x, rows, w, b, eps);
  }
  addScaled(h: GpuTensor, a: GpuTensor, n: number, s: number): void { addScaled(this.ctx, h, a, n, s); }
  addNorm(h: GpuTensor, a: GpuTensor, rows: number, width: number, s: number,
    norm: { kind: 'rms' | 'layer'; w: GpuWeight; b?: GpuWeight; eps: number }): GpuTensor {
    return addNorm(this.ctx, norm.kind, h, a, s, rows, norm.w, norm.b, norm.eps, undefined, width);
  }
  scale(x: GpuTensor, n: number, s: number): void { scaleInPlace(this.ctx, x, n, s); }
  clamp(x: GpuTensor, n: number, limit: number): void { clampInPlace(this.ctx, x, n, limit); }
  gatedAct(g: GpuTensor, u: GpuTensor, n: number, act: ActivationSpec): void { gatedAct(this.ctx, g, u, n, act.kind, act.alpha, act.limit); }
  copyCols(src: GpuTensor, srcWidth: number, srcFrom: number, dst: GpuTensor, dstWidth: number, dstFrom: number, count: number, rows: number, srcRowDiv = 1): void {
    copyCols(this.ctx, src, srcWidth, srcFrom, dst, dstWidth, dstFrom, count, rows, srcRowDiv);
  }
  rope(x: GpuTensor, T: number, heads: number, headDim: number, cosSin: GpuTensor, half: number, interleaved: boolean, offset: number): void {
    applyRopeGpu(this.ctx, x, T, heads, headDim, cosSin, half, interleaved, offset);
  }
  qkvToCache(qkv: GpuTensor, T: number, Hq: number, Hk: number, hd: number, cosSin: GpuTensor, half: number, interleaved: boolean,
    cache: DeviceLayerCache<GpuTensor>, norm?: { q: GpuWeight; k: GpuWeight; eps: number }): GpuTensor {
    if (hd <= QK_NORM_ROPE_MAX_HD) {
      const row0 = cache.reserve(T);
      return qkvToCacheGpu(this.ctx, qkv, T, Hq, Hk, hd, cosSin, half, interleaved, cache.k, cache.v, row0, norm);
    }
    // Head dims past the fused kernel's workgroup memory: split the columns, then the separate kernels.
    const qw = Hq * hd;
    const kw = Hk * hd;
    const W = qw + 2 * kw;
    const q = this.ctx.tensor([T, Hq, hd]);
    const k = this.ctx.tensor([T, Hk, hd]);
    const v = this.ctx.tensor([T, Hk, hd]);
    copyCols(this.ctx, qkv, W, 0, q, qw, 0, qw, T);
    copyCols(this.ctx, qkv, W, qw, k, kw, 0, kw, T);
    copyCols(this.ctx, qkv, W, qw + kw, v, kw, 0, kw, T);
    this.qkNormRope(q, k, T, Hq, Hk, hd, cosSin, half, interleaved, norm);
    cache.append(k, v, T);
    this.ctx.release(k, v);
    return q;
  }
  qkNormRope(q: GpuTensor, k: GpuTensor, T: number, Hq: number, Hk: number, hd: number, cosSin: GpuTensor, half: number,
    interleaved: boolean, norm?: { q: GpuWeight; k: GpuWeight; eps: number }): void {
    if (hd <= QK_NORM_ROPE_MAX_HD) {
      qkNormRopeGpu(this.ctx, q, k, T, Hq, Hk, hd, cosSin, half, interleaved, norm);
      return;
    }
    if (norm) {
      rmsNorm(this.ctx, q, T, norm.q, norm.eps, q, Hq * hd);
      rmsNorm(this.ctx, k, T, norm.k, norm.eps, k, Hk * hd);
    }
    applyRopeGpu(this.ctx, q, T, Hq, hd, cosSin, half, interleaved, 0);
    applyRopeGpu(this.ctx, k, T, Hk, hd, cosSin, half, interleaved, 0);
  }
  attention(q: GpuTensor, Tq: number, H: number, dq: number, k: GpuTensor, v: GpuTensor, Tk: number, KVH: number, dv: number, start: number,
    opts: { scale: number; window?: number | null; sinks?: GpuWeight }): GpuTensor {
    return attentionGpu(this.ctx, q, Tq, H, dq, k, v, Tk, KVH, dv, start, opts);
  }
  route(logits: GpuTensor, T: number, E: number, k: number, spec: DeviceRouterSpec, bias?: GpuWeight): { experts: GpuTensor; gates: GpuTensor } {
    return routeGpu(this.ctx, logits, T, E, k, spec, bias);
  }
  moe(x: GpuTensor, T: number, experts: GpuTensor, gates: GpuTensor, k: number, set: GpuExpertSet, act: ActivationSpec): GpuTensor {
    const path = this.opts.tensorCores === 'always' && coopExpertsFit(this.ctx, set) ? 'coop' : 'auto';
    return moeExpertsGpu(this.ctx, x, T, experts, gates, k, set, { kind: act.kind, alpha: act.alpha, limit: act.limit }, undefined, { path });
  }
  addSigmoidGated(out: GpuTensor, s: GpuTensor, g: GpuTensor, T: number, D: number): void { addSigmoidGated(this.ctx, out, s, g, T, D); }
  /** A layer boundary: submit when enough work is waiting (GpuContext.flushIfBusy); reads always submit. */
  flush(): void { this.ctx.flushIfBusy(FLUSH_MIN_DISPATCHES); }
}
