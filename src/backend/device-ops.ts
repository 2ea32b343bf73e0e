/**
 * The op interface a device backend implements for the model graph in src/models/device-causal-lm.ts. Tensors are
 * opaque handles living on the device (`H`), weights are device-resident handles (`W`), a layer's routed experts are
 * one handle (`X`) so a backend can run them all in one grouped dispatch.
 *
 * Every op is recorded synchronously; only `read*` is asynchronous (a GPU backend submits and maps there). Ops never
 * read back inside a forward pass. Two implementations: src/backend/cpu/cpu-ops.ts (the CPU kernels, handles are
 * Float32Arrays) and src/backend/webgpu/webgpu-ops.ts (WGSL kernels, handles are GPU buffers).
 */
import type { Weight } from '../tensor/weight.js';
import type { GatedActivation } from './cpu/activations.js';
import type { RouterSpec } from '../moe/routers/router.js';

/** The fixed-k inference routing rules a device can run (the standard model routers). */
export type DeviceRouterSpec = Extract<RouterSpec, { kind: 'softmax-topk' | 'topk-softmax' | 'sigmoid-group-topk' | 'group-limited-greedy' | 'sparsemixer' }>;

export function isDeviceRouterSpec(spec: RouterSpec): spec is DeviceRouterSpec {
  return spec.kind === 'softmax-topk' || spec.kind === 'topk-softmax' || spec.kind === 'sigmoid-group-topk'
    || spec.kind === 'group-limited-greedy' || spec.kind === 'sparsemixer';
}

export interface ActivationSpec {
  kind: GatedActivation;
  alpha?: number;
  limit?: number;
}

/** The routed experts of one layer: E gated FFNs of width F over D. */
export interface ExpertSetSource {
  E: number;
  D: number;
  F: number;
  gate: readonly Weight[]; // E × [F, D]
  up: readonly Weight[]; // E × [F, D]
  down: readonly Weight[]; // E × [D, F]
  gateBias?: readonly Weight[]; // E × [F]
  upBias?: readonly Weight[];
  downBias?: readonly Weight[]; // E × [D]
}

/** One sequence's cache for one layer, on the device. */
export interface DeviceLayerCache<H> {
  readonly k: H;
  readonly v: H;
  readonly length: number;
  /** Append S rows of keys [S, kWidth] and values [S, vWidth]. */
  append(k: H, v: H, S: number): void;
  /** Make room for S rows, counted as filled from now on (the caller writes them); returns the first row's index. */
  reserve(S: number): number;
}

export interface DeviceKVCache<H> {
  /** [layer][sequence] */
  readonly layers: DeviceLayerCache<H>[][];
  readonly length: number;
  release(): void;
}

export interface DeviceOps<H, W, X> {
  readonly name: string;
  /**
   * True when weights are copied to device memory at load: the host copies are then read into ordinary typed arrays
   * (not the CPU backend's WASM heap) and dropped after the upload.
   */
  readonly uploadsWeights: boolean;
  /**
   * Whether linear layers that read the same input are merged into one at load (q, k and v: one dispatch instead of
   * three on a GPU; the CPU uses its weights in place and would have to copy them).
   */
  readonly fusesProjections: boolean;

  // ---- weights (device-resident from load on)
  /**
   * A matrix, which the backend may store in a narrower dtype (f16) unless `exact` (router weights: routing decisions
   * must not move with storage precision).
   */
  weight(w: Weight, exact?: boolean): W;
  /** An f32 vector (norm weights, biases, sinks, correction biases). */
  vector(data: Float32Array, name: string): W;
  experts(src: ExpertSetSource, name: string): X;

  // ---- tensors
  upload(data: Float32Array | Int32Array, shape: readonly number[]): H;
  read(h: H, n: number): Promise<Float32Array>;
  readI32(h: H, n: number): Promise<Int32Array>;
  release(...hs: (H | undefined)[]): void;
  newCache(widths: readonly { k: number; v: number }[], batch: number): DeviceKVCache<H>;
  /** rows [from, from + count) of x[*, width] as a new tensor. */
  sliceRows(x: H, width: number, from: number, count: number): H;
  /** dst rows [at, at + count) ← src[count, width]. */
  writeRows(dst: H, width: number, at: number, src: H, count: number): void;
  /** An uninitialised [rows, width] f32 tensor. */
  empty(shape: readonly number[]): H;

  // ---- ops
  /** table[ids] × mult → [n, D] (ids already validated). */
  embed(table: W, ids: Int32Array, D: number, mult: number): H;
  /** x[M, K] · wᵀ (+ bias) → [M, N]. */
  linear(x: H, M: number, K: number, w: W, bias?: W): H;
  /** RMSNorm over consecutive groups of w's length. */
  rmsNorm(x: H, rows: number, width: number, w: W, eps: number): H;
  layerNorm(x: H, rows: number, width: number, w: W, b: W | undefined, eps: number): H;
  /** h += s · a (n elements), in place. */
  addScaled(h: H, a: H, n: number, s: number): void;
  /**
   * The residual add and the norm after it: h[rows, width] += s · a in place, then the norm of the updated h (RMSNorm
   * or LayerNorm over rows of `width`, `norm.w`/`norm.b` of that length) → a new tensor. Equals addScaled followed by
   * rmsNorm/layerNorm (one pass over h on a GPU instead of two).
   */
  addNorm(h: H, a: H, rows: number, width: number, s: number, norm: { kind: 'rms' | 'layer'; w: W; b?: W; eps: number }): H;
  scale(x: H, n: number, s: number): void;
  /** x[i] = min(max(x[i], -limit), limit) for i < n, in place (OLMoE's clip_qkv). */
  clamp(x: H, n: number, limit: number): void;
  /** g = act(g) ⊙ u, in place. */
  gatedAct(g: H, u: H, n: number, act: ActivationSpec): void;
  /** dst[r, dstFrom + c] = src[⌊r / srcRowDiv⌋, srcFrom + c] for r < rows, c < count. */
  copyCols(src: H, srcWidth: number, srcFrom: number, dst: H, dstWidth: number, dstFrom: number, count: number, rows: number, srcRowDiv?: number): void;
  /** Rotate x[T, heads, headDim] in place with a [T, half, 2] (cos, sin) table, rotated dims starting at `offset`. */
  rope(x: H, T: number, heads: number, headDim: number, cosSin: H, half: number, interleaved: boolean, offset: number): void;
  /**
   * GQA attention inputs from one fused projection qkv[T, (Hq + 2·Hk)·hd] (per row: q heads, k heads, v heads):
   * returns q[T, Hq, hd] (new), per-head RMSNorm'd with norm.q when given and rotated by RoPE (dims [0, 2·half)),
   * and writes k (norm.k, RoPE) and v into `cache` rows [cache.length, cache.length + T) (reserving them). Equals
   * splitting the columns, qkNormRope and cache.append (one dispatch on a GPU).
   */
  qkvToCache(qkv: H, T: number, Hq: number, Hk: number, hd: number, cosSin: H, half: number, interleaved: boolean,
    cache: DeviceLayerCache<H>, norm?: { q: W; k: W; eps: number }): H;
  /**
   * GQA query/key preparation, in place: q[T, Hq, hd] and k[T, Hk, hd], each head RMS-normalised with `norm` (f32
   * weights of length hd; omitted: no norm), then RoPE on dims [0, 2·half). Equals rmsNorm + rope on each (one
   * dispatch on a GPU instead of four).
   */
  qkNormRope(q: H, k: H, T: number, Hq: number, Hk: number, hd: number, cosSin: H, half: number, interleaved: boolean,
    norm?: { q: W; k: W; eps: number }): void;
  /** Causal attention of q[Tq, H, dq] over k[Tk, KVH, dq], v[Tk, KVH, dv] (queries start at position `start`). */
  attention(q: H, Tq: number, H: number, dq: number, k: H, v: H, Tk: number, KVH: number, dv: number, start: number,
    opts: { scale: number; window?: number | null; sinks?: W }): H;
  /** Router logits [T, E] → top-k experts (i32 [T, k]) and gates (f32 [T, k]). */
  route(logits: H, T: number, E: number, k: number, spec: DeviceRouterSpec, bias?: W): { experts: H; gates: H };
  /** Σ_j gates[t, j] · FFN_{experts[t, j]}(x[t]) → [T, D]. */
  moe(x: H, T: number, experts: H, gates: H, k: number, set: X, act: ActivationSpec): H;
  /** out[t, :] += sigmoid(g[t]) · s[t, :] (Qwen2-MoE's gated shared expert); g is [T, 1]. */
  addSigmoidGated(out: H, s: H, g: H, T: number, D: number): void;
  /** A layer boundary: the backend may submit the work recorded so far (WebGPU: in batches; no-op on the CPU). */
  flush(): void;
}
