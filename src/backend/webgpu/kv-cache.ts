/**
 * Key/value cache resident on the GPU, mirroring src/infer/kv-cache.ts.
 *
 * `GpuLayerKVCache` holds one sequence of one layer: two pooled buffers of `capacity` rows (k: [capacity, kWidth],
 * v: [capacity, vWidth]; a row is heads × dims of one token), of which the first `length` rows are filled. So
 * `cache.k` / `cache.v` are directly the [Tk, KVH, d] inputs of `attentionGpu` with Tk = `length`.
 *
 * `append` records GPU copies only (no readback, nothing waits; `reserve` makes room for rows a kernel writes itself): when the new rows do not fit, the capacity doubles
 * (until it fits), the filled rows are copied into fresh buffers, and the old buffers go back to the context's pool.
 * Releasing them right after recording the copy is safe: the pool may hand them out again at once, but every later
 * write to them is recorded after the copy in the same command stream (see the ordering note in context.ts).
 *
 * Limits: a single layer's buffer must fit one storage binding (ctx.maxBinding) to be read by attention.
 */
import type { GpuContext, GpuTensor } from './context.js';

export class GpuLayerKVCache {
  k: GpuTensor;
  v: GpuTensor;
  /** Filled rows (tokens). */
  length = 0;
  private cap: number;

  constructor(private readonly ctx: GpuContext, readonly kWidth: number, readonly vWidth: number, initialCapacity = 64) {
    this.cap = Math.max(1, Math.ceil(initialCapacity));
    this.k = ctx.tensor([this.cap, kWidth]);
    this.v = ctx.tensor([this.cap, vWidth]);
  }

  /** Rows the buffers hold before they must grow. */
  get capacity(): number { return this.cap; }

  /** Append S rows: k [S, kWidth], v [S, vWidth] (only the first S rows of each are read). */
  append(k: GpuTensor, v: GpuTensor, S: number): void {
    if (S <= 0) return;
    const at = this.reserve(S);
    this.ctx.copy(k, 0, this.k, at * this.kWidth * 4, S * this.kWidth * 4);
    this.ctx.copy(v, 0, this.v, at * this.vWidth * 4, S * this.vWidth * 4);
  }

  /**
   * Make room for S more rows and count them as filled (a kernel writes them next, e.g. qkvToCacheGpu); returns the
   * first one's index. Growing records the copies described above.
   */
  reserve(S: number): number {
    const at = this.length;
    const need = at + S;
    if (need > this.cap) {
      let cap = this.cap;
      while (cap < need) cap *= 2;
      const nk = this.ctx.tensor([cap, this.kWidth]);
      const nv = this.ctx.tensor([cap, this.vWidth]);
      this.ctx.copy(this.k, 0, nk, 0, at * this.kWidth * 4);
      this.ctx.copy(this.v, 0, nv, 0, at * this.vWidth * 4);
      // Safe after the copies are recorded: later users of these buffers are recorded after them.
      this.ctx.release(this.k, this.v);
      this.k = nk;
      this.v = nv;
      this.cap = cap;
    }
    this.length = need;
    return at;
  }

  /** Return the buffers to the pool; the cache must not be used afterwards. */
  release(): void {
    this.ctx.release(this.k, this.v);
    this.length = 0;
  }
}

/** Cache for a batch of sequences: [layer][sequence]. */
export class GpuKVCache {
  readonly layers: GpuLayerKVCache[][];

  constructor(ctx: GpuContext, widths: ReadonlyArray<{ k: number; v: number }>, batch: number) {
    this.layers = widths.map((w) => Array.from({ length: batch }, () => new GpuLayerKVCache(ctx, w.k, w.v)));
  }

  /** Tokens already cached (same for every sequence of the batch). */
  get length(): number {
    return this.layers[0]?.[0]?.length ?? 0;
  }

  release(): void {
    for (const layer of this.layers) for (const c of layer) c.release();
  }
}
