/**
 * Group-limited top-k, trainable (DeepSeek-AI, "DeepSeek-V2", 2024, arXiv:2405.04434 §2.2.2 device-limited routing;
 * "DeepSeek-V3 Technical Report", 2024, arXiv:2412.19437 §2.1.2 node-limited routing):
 *   scores = softmax(W x) (V2) or sigmoid(W x) (V3); the E experts form nGroup consecutive groups scored by their
 *   best member ('max', V2) or the sum of their two best ('top2-sum', V3); only the topkGroup best groups may be
 *   chosen; gates = chosen scores (÷ their sum when normTopK) × scaling. Plus the ZooBalance losses / capacity.
 * Unlike the inference `group-limited-greedy` router, excluded experts are removed from the choice outright (the
 * papers' rule), not filled with 0.0 as transformers does.
 * Parameters: `${prefix}.gate.weight` [E, D].
 */
import type { Var } from '../../train/autograd/var.js';
import { linear } from '../../train/autograd/ops/linear.js';
import type { RouterSpec } from './router.js';
import type { RouterContext, SlotRouting, TrainableRouterOptions } from './trainable.js';
import { ZooRouterBase, checkGroups, tokenChoiceRoute, type GroupLimit } from './zoo-common.js';

type Spec = Extract<RouterSpec, { kind: 'group-limited-topk' }>;

export class GroupLimitedTopKRouter extends ZooRouterBase {
  readonly name = 'group-limited-topk';
  private readonly groups: GroupLimit;

  constructor(readonly spec: Spec, o: TrainableRouterOptions) {
    super(o, o.numExperts);
    this.groups = { nGroup: spec.nGroup, topkGroup: spec.topkGroup, groupScore: spec.groupScore ?? (spec.score === 'softmax' ? 'max' : 'top2-sum') };
    checkGroups(this.name, o.numExperts, this.groups);
    const reachable = (o.numExperts / spec.nGroup) * spec.topkGroup;
    if (o.topK < 1 || o.topK > reachable) throw new Error(`${this.name}: top-k ${o.topK} must be in 1..${reachable} (experts in the kept groups)`);
  }

  route(x: Var, ctx: RouterContext): SlotRouting {
    this.checkX(x);
    return tokenChoiceRoute(linear(x, this.weight), this.weight, {
      score: this.spec.score, k: this.o.topK, E: this.numExperts, normTopK: this.spec.normTopK, scaling: this.spec.scaling,
      groups: this.groups, balance: this.spec,
    }, ctx);
  }
}
