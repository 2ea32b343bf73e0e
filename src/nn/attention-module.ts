/** The interface every attention variant (GQA, MLA) implements for the decoder. */
import type { LayerKVCache } from '../infer/kv-cache.js';

export interface AttentionModule {
  /** Widths (floats per token) of the cached keys and values. */
  readonly cacheWidths: { k: number; v: number };
  /**
   * x: [S, D] hidden states of one sequence whose first token sits at `start`; appends to `cache` and returns
   * the attention output [S, D].
   */
  forward(x: Float32Array, S: number, start: number, cache: LayerKVCache): Float32Array;
}
