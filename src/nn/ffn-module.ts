/** The interface every FFN (dense gated MLP or MoE block) implements for the decoder. */
import type { Routing } from '../moe/routers/router.js';

export interface FfnResult {
  out: Float32Array;
  /** Present for MoE blocks: what the router decided. */
  routing?: Routing;
}

export interface FfnModule {
  forward(x: Float32Array, T: number): FfnResult;
}
