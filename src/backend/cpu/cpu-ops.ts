/**
 * The device op interface (src/backend/device-ops.ts) on the CPU kernels: handles are Float32Arrays (expert ids
 * are stored as exact small floats), weights are the loaded Weights. It runs the device graph
 * (src/models/device-causal-lm.ts) on the CPU so the graph itself is checked against the fixtures independently of
 * any GPU, and is the reference the WebGPU ops are compared with.
 */
import type { Weight } from '../../tensor/weight.js';
import { weightToF32 } from '../../tensor/weight.js';
import { roundToF16 } from '../../tensor/dtype.js';
import type { ActivationSpec, DeviceKVCache, DeviceLayerCache, DeviceOps, DeviceRouterSpec, ExpertSetSource } from '../device-ops.js';
import { linear } from './linear.js';
import { rmsNorm, layerNorm } from './norm.js';
import { attention } from './attention.js';
import { applyRopeTable } from './rope.js';
import { gatedActivation, sigmoid } from './activations.js';
import { KVCache } from '../../infer/kv-cache.js';
import { makeRouterWithBias } from '../../moe/routers/index.js';
import { runExperts, type ExpertWeights } from '../../moe/experts.js';
import { dispatch } from '../../moe/dispatch.js';

type H = Float32Array;

export interface CpuExpertSet {
  E: number;
  experts: ExpertWeights[];
}

export interface CpuOpsOptions {
  /**
   * Round every matrix (not vectors) through IEEE f16 at load, as a GPU backend storing f16 weights sees them: the
   * reference its f16 path is compared with.
   */
  roundMatricesToF16?: boolean;
  /**
   * With roundMatricesToF16: also round the activations entering every matmul with such a matrix (dense linears and
   * expert FFNs) through f16, as WebGPU's tensor-core kernels do (coop-gemm.ts). Router matmuls (exact weights)
   * keep f32 inputs.
   */
  roundMatmulInputsToF16?: boolean;
}

function roundF16(w: Weight): Weight {
  return { name: w.name, dtype: 'f32', shape: w.shape, data: roundToF16(weightToF32(w).slice()) };
}

/** GPT-OSS's clamped-SwiGLU constants (the CPU activation's defaults where the spec leaves them out). */
function gptOssOpts(act: ActivationSpec): { alpha: number; limit: number } | undefined {
  return act.kind === 'gpt_oss' ? { alpha: act.alpha ?? 1.702, limit: act.limit ?? 7 } : undefined;
}

export class CpuOps implements DeviceOps<H, Weight, CpuExpertSet> {
  readonly name = 'cpu';
  readonly uploadsWeights = false;
  /** q/k/v stay three matrices: weights are used in place, and merging them would copy them. */
  readonly fusesProjections = false;
  /** The matrices rounded through f16 at load (their matmuls round inputs too with roundMatmulInputsToF16). */
  private readonly halfMatrices = new WeakSet<Weight>();
  constructor(private readonly opts: CpuOpsOptions = {}) {}

  weight(w: Weight, exact = false): Weight {
    if (exact || !this.opts.roundMatricesToF16 || w.shape.length < 2) return w;
    const r = roundF16(w);
    this.halfMatrices.add(r);
    return r;
  }
  vector(data: Float32Array, name: string): Weight { return { name, dtype: 'f32', shape: [data.length], data }; }
  experts(src: ExpertSetSource): CpuExpertSet {
    const experts: ExpertWeights[] = [];
    for (let e = 0; e < src.E; e++) {
      experts.push({
        gate: this.weight(src.gate[e]!), up: this.weight(src.up[e]!), down: this.weight(src.down[e]!),
        gateBias: src.gateBias?.[e], upBias: src.upBias?.[e], downBias: src.downBias?.[e],
      });
    }
    return { E: src.E, experts };
  }

  upload(data: Float32Array | Int32Array): H { return Float32Array.from(data); }
  async read(h: H, n: number): Promise<Float32Array> { return h.slice(0, n); }
  async readI32(h: H, n: number): Promise<Int32Array> { return Int32Array.from(h.subarray(0, n)); }
  release(): void {}
  newCache(widths: readonly { k: number; v: number }[], batch: number): DeviceKVCache<H> {
    const kv = new KVCache(widths, batch);
    return { layers: kv.layers, get length() { return kv.length; }, release() {} };
  }
  sliceRows(x: H, width: number, from: number, count: number): H { return x.slice(from * width, (from + count) * width); }
  writeRows(dst: H, width: number, at: number, src: H, count: number): void { dst.set(src.subarray(0, count * width), at * width); }
  empty(shape: readonly number[]): H { return new Float32Array(shape.reduce((a, b) => a * b, 1)); }

  embed(table: Weight, ids: Int32Array, D: number, mult: number): H {
    const out = new Float32Array(ids.length * D);
    ids.forEach((id, i) => {
      const row = weightToF32({ ...table, data: table.data.subarray(id * D, id * D + D), shape: [1, D] });
      out.set(row, i * D);
    });
    if (mult !== 1) for (let i = 0; i < out.length; i++) out[i]! *= mult;
    return out;
  }
  linear(x: H, M: number, K: number, w: Weight, bias?: Weight): H {
    const xin = this.opts.roundMatmulInputsToF16 && this.halfMatrices.has(w) ? roundToF16(x.slice(0, M * K)) : x;
    return linear(xin, M, K, w, bias);
  }
  rmsNorm(x: H, rows: number, width: number, w: Weight, eps: number): H {
    return rmsNorm(x.subarray(0, rows * width), w.data as Float32Array, eps);
  }
  layerNorm(x: H, rows: number, width: number, w: Weight, b: Weight | undefined, eps: number): H {
    return layerNorm(x.subarray(0, rows * width), w.data as Float32Array, b?.data as Float32Array | undefined, eps);
  }
  addScaled(h: H, a: H, n: number, s: number): void { for (let i = 0; i < n; i++) h[i]! += a[i]! * s; }
  addNorm(h: H, a: H, rows: number, width: number, s: number, norm: { kind: 'rms' | 'layer'; w: Weight; b?: Weight; eps: number }): H {
    this.addScaled(h, a, rows * width, s);
    return norm.kind === 'rms' ? this.rmsNorm(h, rows, width, norm.w, norm.eps) : this.layerNorm(h, rows, width, norm.w, norm.b, norm.eps);
  }
  scale(x: H, n: number, s: number): void { for (let i = 0; i < n; i++) x[i]! *= s; }
  clamp(x: H, n: number, limit: number): void {
    const lo = -limit;
    for (let i = 0; i < n; i++) {
      const v = x[i]!;
      if (v > limit) x[i] = limit;
      else if (v < lo) x[i] = lo;
    }
  }
  gatedAct(g: H, u: H, n: number, act: ActivationSpec): void {
    gatedActivation(act.kind, g.subarray(0, n), u.subarray(0, n), gptOssOpts(act));
  }
  copyCols(src: H, srcWidth: number, srcFrom: number, dst: H, dstWidth: number, dstFrom: number, count: number, rows: number, srcRowDiv = 1): void {
    for (let r = 0; r < rows; r++) {
      const s = Math.floor(r / srcRowDiv) * srcWidth + srcFrom;
      dst.set(src.subarray(s, s + count), r * dstWidth + dstFrom);
    }
  }
  rope(x: H, T: number, heads: number, headDim: number, cosSin: H, half: number, interleaved: boolean, offset: number): void {
    applyRopeTable(x, T, heads, headDim, cosSin, half, interleaved, offset);
  }
  qkvToCache(qkv: H, T: number, Hq: number, Hk: number, hd: number, cosSin: H, half: number, interleaved: boolean,
    cache: DeviceLayerCache<H>, norm?: { q: Weight; k: Weight; eps: number }): H {
    const qw = Hq * hd;
    const kw = Hk * hd;
    const W = qw + 2 * kw;
    const q = new Float32Array(T * qw);
    const k = new Float32Array(T * kw);
    const v = new Float32Array(T * kw);
    for (let t = 0; t < T; t++) {
      const r = t * W;
      q.set(qkv.subarray(r, r + qw), t * qw);
      k.set(qkv.subarray(r + qw, r + qw + kw), t * kw);
      v.set(qkv.subarray(r + qw + kw, r + W), t * kw);
    }
    this.qkNormRope(q, k, T, Hq, Hk, hd, cosSin, half, interleaved, norm);
    cache.append(k, v, T);
    return q;
  }
  qkNormRope(q: H, k: H, T: number, Hq: number, Hk: number, hd: number, cosSin: H, half: number, interleaved: boolean,
    norm?: { q: Weight; k: Weight; eps: number }): void {
    if (norm) {
      q.set(this.rmsNorm(q, T, Hq * hd, norm.q, norm.eps));
      k.set(this.rmsNorm(k, T, Hk * hd, norm.k, norm.eps));
    }
    applyRopeTable(q, T, Hq, hd, cosSin, half, interleaved, 0);
    applyRopeTable(k, T, Hk, hd, cosSin, half, interleaved, 0);
  }
  attention(q: H, Tq: number, H: number, dq: number, k: H, v: H, Tk: number, KVH: number, dv: number, start: number,
    opts: { scale: number; window?: number | null; sinks?: Weight }): H {
    return attention(q, Tq, H, dq, k, v, Tk, KVH, dv, start, { scale: opts.scale, window: opts.window, sinks: opts.sinks?.data as Float32Array | undefined });
  }
  route(logits: H, T: number, E: number, k: number, spec: DeviceRouterSpec, bias?: Weight): { experts: H; gates: H } {
    const r = makeRouterWithBias(spec, E, k, bias?.data as Float32Array | undefined).route(logits.subarray(0, T * E), T);
    return { experts: Float32Array.from(r.experts), gates: r.gates };
  }
  moe(x: H, T: number, experts: H, gates: H, k: number, set: CpuExpertSet, act: ActivationSpec): H {
    const D = x.length / T;
    const routing = { T, k, E: set.E, logits: new Float32Array(0), scores: new Float32Array(0), experts: Int32Array.from(experts), gates };
    const out = new Float32Array(T * D);
    const cfg = { act: act.kind, actOpts: gptOssOpts(act), roundInputsToF16: this.opts.roundMatmulInputsToF16 === true };
    runExperts(x, D, routing, dispatch(routing), (e) => set.experts[e]!, cfg, out);
    return out;
  }
  addSigmoidGated(out: H, s: H, g: H, T: number, D: number): void {
    for (let t = 0; t < T; t++) {
      const sc = sigmoid(g[t]!);
      for (let c = 0; c < D; c++) out[t * D + c]! += sc * s[t * D + c]!;
    }
  }
  flush(): void {}
}
