/**
 * Null experts (Zeng et al., "AdaMoE: Token-Adaptive Routing with Null Experts for Mixture-of-Experts
 * Language Models", Findings of EMNLP 2024, arXiv:2406.13233): numNull extra experts that output zero (0 FLOPs) are
 * added to the router, and top-k runs over all E + numNull ids, so a token that picks j null experts uses only k − j
 * real ones — the number of real experts per token adapts.
 *   p = softmax(W x) over E + numNull ids; the k largest; gates of the chosen real experts are renormalised among
 *   the token's chosen real experts when normTopK (the reference code's rule; a token with only null experts gets no
 *   real expert), null-expert gates keep their probability (they multiply zero anyway).
 *   Load-balancing loss: the Switch loss over all E + numNull ids (the reference code's loss).
 * Slots include the null-expert choices (expert ids E..E+numNull−1, kind 'zero').
 * Parameters: `${prefix}.gate.weight` [E + numNull, D] (real experts' rows first).
 */
import type { Var } from '../../train/autograd/var.js';
import { linear } from '../../train/autograd/ops/linear.js';
import type { RouterSpec } from './router.js';
import type { ExpertKind, RouterContext, SlotRouting, TrainableRouterOptions } from './trainable.js';
import { ZooRouterBase, tokenChoiceRoute } from './zoo-common.js';

type Spec = Extract<RouterSpec, { kind: 'null-experts' }>;

export class NullExpertsRouter extends ZooRouterBase {
  readonly name = 'null-experts';
  override readonly extraExperts: readonly ExpertKind[];

  constructor(readonly spec: Spec, o: TrainableRouterOptions) {
    super(o, o.numExperts + spec.numNull);
    if (!Number.isInteger(spec.numNull) || spec.numNull < 1) throw new Error(`${this.name}: numNull must be a positive integer, got ${spec.numNull}`);
    if (o.topK < 1 || o.topK > o.numExperts + spec.numNull) throw new Error(`${this.name}: top-k ${o.topK} must be in 1..${o.numExperts + spec.numNull}`);
    this.extraExperts = Array.from({ length: spec.numNull }, () => 'zero' as const);
  }

  route(x: Var, ctx: RouterContext): SlotRouting {
    this.checkX(x);
    return tokenChoiceRoute(linear(x, this.weight), this.weight, {
      score: 'softmax', k: this.o.topK, E: this.numExperts, normTopK: this.spec.normTopK ? 'ffn' : false, balance: this.spec,
    }, ctx);
  }
}
