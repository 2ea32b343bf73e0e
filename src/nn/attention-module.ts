/** The interface every attention variant (GQA, MLA) implements for the decoder, on any backend's ops. */
import type { DeviceLayerCache } from '../backend/device-ops.js';
import type { RopeTable } from './rope.js';

export interface AttentionModule<H> {
  /** Widths (floats per token) of the cached keys and values. */
  readonly cacheWidths: { k: number; v: number };
  /** The RoPE table whose (cos, sin) rows `forward` expects (the decoder builds them once per forward). */
  readonly rope: RopeTable;
  /**
   * x: [S, D] hidden states of one sequence whose first token sits at `start`; cosSin: [S, half, 2] for positions
   * start.. start + S − 1. Appends to `cache` and returns the attention output [S, D].
   */
  forward(x: H, S: number, start: number, cache: DeviceLayerCache<H>, cosSin: H): H;
}
