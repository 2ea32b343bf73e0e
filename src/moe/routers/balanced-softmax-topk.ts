/**
 * Softmax top-k with the classic balancing kit: Switch/GShard load-balancing loss (Fedus, Zoph, Shazeer, "Switch
 * Transformers", 2021, arXiv:2101.03961; Lepikhin et al., "GShard", 2020, arXiv:2006.16668), router z-loss (Zoph
 * et al., "ST-MoE", 2022, arXiv:2202.08906), optional soft-orthogonality of the router rows and optional capacity
 * dropping. Routing itself is Shazeer et al. 2017 ("Outrageously Large Neural Networks", arXiv:1701.06538) /
 * Mixtral: p = softmax(W x), the k largest, gates = p (÷ Σ chosen p when normTopK).
 * Parameters: `${prefix}.gate.weight` [E, D].
 */
import type { Var } from '../../train/autograd/var.js';
import { linear } from '../../train/autograd/ops/linear.js';
import type { RouterSpec } from './router.js';
import type { RouterContext, SlotRouting, TrainableRouterOptions } from './trainable.js';
import { ZooRouterBase, tokenChoiceRoute } from './zoo-common.js';

type Spec = Extract<RouterSpec, { kind: 'balanced-softmax-topk' }>;

export class BalancedSoftmaxTopKRouter extends ZooRouterBase {
  readonly name = 'balanced-softmax-topk';
  constructor(readonly spec: Spec, o: TrainableRouterOptions) {
    super(o, o.numExperts);
    if (o.topK < 1 || o.topK > o.numExperts) throw new Error(`${this.name}: top-k ${o.topK} must be in 1..${o.numExperts}`);
  }

  route(x: Var, ctx: RouterContext): SlotRouting {
    this.checkX(x);
    return tokenChoiceRoute(linear(x, this.weight), this.weight, {
      score: 'softmax', k: this.o.topK, E: this.numExperts, normTopK: this.spec.normTopK, balance: this.spec,
    }, ctx);
  }
}
