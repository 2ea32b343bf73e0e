/**
 * The trainable router contract (training, and inference of Switchyard-trained models). Unlike the inference
 * `Router` (fixed k, logits in), a trainable router sees the hidden states, owns its parameters, may carry state
 * across layers (recurrent routers, gating residuals), and returns a variable number of *slots*: (token, expert,
 * gate) triples. That covers fixed top-k, expert choice (experts pick tokens), capacity dropping, dynamic top-p and
 * ReLU routing (variable experts per token), and zero-computation / null experts (expert ids ≥ numExperts,
 * see ExpertKind).
 */
import type { Var } from '../../train/autograd/var.js';

/** What an expert id means. Routed FFN experts are 0..numExperts−1; extra ids name zero-computation experts. */
export type ExpertKind =
  | 'ffn'
  /** AdaMoE null expert / MoE++ zero expert: contributes nothing (0 FLOPs). */
  | 'zero'
  /** MoE++ copy expert: contributes x. */
  | 'copy'
  /** MoE++ constant expert: contributes a learned vector v (per constant expert), mixed as in MoE++. */
  | 'constant';

export interface RouterContext {
  layer: number;
  /** Shared across the layers of one forward pass (e.g. the RMoE GRU state, MoE++ previous-layer logits). */
  carry: Map<string, unknown>;
  training: boolean;
}

export interface SlotRouting {
  T: number;
  /** Slot → token index [n]. */
  tokens: Int32Array;
  /** Slot → expert id [n] (see `expertKinds`). */
  experts: Int32Array;
  /** Gate of each slot [n], differentiable back to the router parameters (and x). */
  gates: Var;
  /** Raw router logits [T, E'] (E' = all expert ids the router scores), for telemetry and standard aux losses. */
  logits: Var;
  /** Auxiliary losses, already multiplied by their coefficients, to add to the training loss. */
  aux: { name: string; loss: Var }[];
}

export interface TrainableRouter {
  /** The strategy's name, e.g. 'softmax-topk', 'expert-choice'. */
  readonly name: string;
  /** Routed FFN experts. */
  readonly numExperts: number;
  /** Kinds of the extra ids after the FFN experts (empty for plain routers). */
  readonly extraExperts: readonly ExpertKind[];
  /** Trainable parameters (names are the checkpoint's tensor names). */
  params(): Var[];
  route(x: Var, ctx: RouterContext): SlotRouting;
  /** Called once per optimiser step with the step's routing (e.g. auxiliary-loss-free bias update, ReMoE's λ). */
  afterStep?(r: readonly SlotRouting[]): void;
  /** Non-parameter state to checkpoint (biases updated without gradients, adaptive coefficients). */
  state?(): Record<string, number[]>;
  loadState?(s: Record<string, number[]>): void;
  /**
   * Output of a 'constant' zero-computation expert (MoE++) for the rows x [n, D] routed to extra id `id`.
   * Routers that declare 'constant' experts own their parameters and implement this.
   */
  constantExpert?(x: Var, id: number): Var;
}

/** What a trainable-router factory receives besides the RouterSpec. */
export interface TrainableRouterOptions {
  layer: number;
  /** Model width. */
  D: number;
  numExperts: number;
  topK: number;
  /** Tensor-name prefix of the layer's MoE block, e.g. `model.layers.3.mlp`; the router weight is `${prefix}.gate.weight`. */
  prefix: string;
  /** Seeded uniform [0, 1) source for parameter initialisation. */
  rng: () => number;
  /** float64 for gradient checks, float32 otherwise. */
  precision: 'f32' | 'f64';
}
