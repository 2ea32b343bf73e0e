/**
 * Key/value cache for one sequence and one layer: rows of `kWidth` / `vWidth` floats (heads × dims), grown by
 * doubling. Attention reads the first `length` rows.
 */
export class LayerKVCache {
  k: Float32Array;
  v: Float32Array;
  length = 0;

  constructor(readonly kWidth: number, readonly vWidth: number, capacity = 64) {
    this.k = new Float32Array(capacity * kWidth);
    this.v = new Float32Array(capacity * vWidth);
  }

  append(k: Float32Array, v: Float32Array, rows: number): void {
    const at = this.reserve(rows);
    this.k.set(k.subarray(0, rows * this.kWidth), at * this.kWidth);
    this.v.set(v.subarray(0, rows * this.vWidth), at * this.vWidth);
  }

  /** Make room for `rows` more rows (growing by doubling) and count them as filled; returns the first one's index. */
  reserve(rows: number): number {
    const at = this.length;
    const need = at + rows;
    if (need * this.kWidth > this.k.length) {
      let cap = this.k.length / this.kWidth;
      while (cap < need) cap *= 2;
      const nk = new Float32Array(cap * this.kWidth);
      nk.set(this.k.subarray(0, at * this.kWidth));
      const nv = new Float32Array(cap * this.vWidth);
      nv.set(this.v.subarray(0, at * this.vWidth));
      this.k = nk;
      this.v = nv;
    }
    this.length = need;
    return at;
  }
}

/** Cache for a batch of sequences: [layer][sequence]. */
export class KVCache {
  readonly layers: LayerKVCache[][];
  constructor(widths: ReadonlyArray<{ k: number; v: number }>, batch: number) {
    this.layers = widths.map((w) => Array.from({ length: batch }, () => new LayerKVCache(w.k, w.v)));
  }
  /** Tokens already cached (same for every sequence of the batch). */
  get length(): number {
    return this.layers[0]?.[0]?.length ?? 0;
  }
  /** Nothing to free on the CPU (the device caches' interface). */
  release(): void {}
}
