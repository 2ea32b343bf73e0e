/** The interface every FFN (dense gated MLP or MoE block) implements for the decoder. */
import type { Routing } from '../moe/routers/router.js';
import type { ExpertKind } from '../moe/routers/trainable.js';

/** What a slot router (the trainable zoo routers run for inference) decided: slot i = (token, expert, gate). */
export interface SlotRoutingResult {
  T: number;
  /** Routed FFN experts E; ids ≥ E are the zero-computation experts `extraExperts[id − E]`. */
  numExperts: number;
  extraExperts: readonly ExpertKind[];
  tokens: Int32Array;
  experts: Int32Array;
  gates: Float32Array;
  /** Raw router logits [T, E'] over every id the router scores. */
  logits: Float32Array;
}

export interface FfnResult<H = Float32Array> {
  out: H;
  /** Present for CPU MoE blocks with a fixed-k inference router: what the router decided. */
  routing?: Routing;
  /** Present for MoE blocks run by a slot (zoo) router. */
  slots?: SlotRoutingResult;
  /** Device MoE blocks: the chosen experts (i32 [T, k]) as a backend tensor, released by the caller. */
  experts?: H;
}

/**
 * Per-forward state shared by the layers of one forward pass, in layer order (CausalLM makes one per forward):
 * routers that carry state across layers (RMoE's GRU state, MoE++ gating residuals) keep it in `carry`. The carried
 * values are per token, so a KV-cached decoding step carries exactly what a full forward would for that token.
 */
export interface FfnContext {
  carry: Map<string, unknown>;
}

export interface FfnModule<H = Float32Array> {
  forward(x: H, T: number, ctx?: FfnContext): FfnResult<H>;
}
