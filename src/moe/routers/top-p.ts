/**
 * Dynamic top-p routing (Huang et al., "Harder Tasks Need More Experts: Dynamic Routing in
 * MoE Models", ACL 2024, arXiv:2403.07652 §3):
 *   P = softmax(W x); sort descending (ties → lower id); activate the smallest prefix whose cumulative probability
 *   reaches the threshold p (the expert that crosses p is included), optionally capped at maxK;
 *   gates = P of the activated experts (not renormalised, as in the paper's eq. 4).
 *   Dynamic loss (the paper's L_d, entropy of the routing distribution, pushes the router to be confident so fewer
 *   experts are needed): L_d = (1/T) Σ_t −Σ_e P_te log P_te, × entropyCoef (paper: 1e-4); plus the ZooBalance
 *   losses (the paper uses the load-balancing loss with 1e-2, here over however many slots were chosen).
 * Parameters: `${prefix}.gate.weight` [E, D].
 */
import type { Var } from '../../train/autograd/var.js';
import { mul, scale } from '../../train/autograd/ops/elementwise.js';
import { linear } from '../../train/autograd/ops/linear.js';
import { mean, sumCols } from '../../train/autograd/ops/reduce.js';
import { gatherElements } from '../../train/autograd/ops/shape.js';
import { logSoftmax, softmax } from '../../train/autograd/ops/softmax.js';
import type { RouterSpec } from './router.js';
import type { RouterContext, SlotRouting, TrainableRouterOptions } from './trainable.js';
import { ZooRouterBase, balanceAux, topkAllowed, type AuxLoss } from './zoo-common.js';
import { applyCapacity, expertCapacity } from '../balance/capacity.js';

type Spec = Extract<RouterSpec, { kind: 'top-p' }>;

/** Mean routing entropy −(1/T) Σ_t Σ_e P log P from the logits (log-softmax keeps it finite). */
export function routingEntropy(logits: Var, probs = softmax(logits)): Var {
  return scale(mean(sumCols(mul(probs, logSoftmax(logits)))), -1);
}

export class TopPRouter extends ZooRouterBase {
  readonly name = 'top-p';
  constructor(readonly spec: Spec, o: TrainableRouterOptions) {
    super(o, o.numExperts);
    if (!(spec.threshold > 0 && spec.threshold <= 1)) throw new Error(`${this.name}: threshold must be in (0, 1], got ${spec.threshold}`);
    if (spec.maxK !== undefined && !(Number.isInteger(spec.maxK) && spec.maxK >= 1)) throw new Error(`${this.name}: maxK must be a positive integer`);
  }

  route(x: Var, ctx: RouterContext): SlotRouting {
    const T = this.checkX(x);
    const E = this.numExperts;
    const logits = linear(x, this.weight);
    const probs = softmax(logits);
    const maxK = Math.min(E, this.spec.maxK ?? E);
    const order = new Int32Array(E);
    const tokens: number[] = [];
    const experts: number[] = [];
    const ranks: number[] = [];
    for (let t = 0; t < T; t++) {
      topkAllowed(probs.data, t * E, E, E, order);
      let cum = 0;
      for (let j = 0; j < maxK; j++) {
        const e = order[j]!;
        tokens.push(t); experts.push(e); ranks.push(j);
        cum += probs.data[t * E + e]!;
        if (cum >= this.spec.threshold) break;
      }
    }
    let tok = Int32Array.from(tokens);
    let exp = Int32Array.from(experts);
    let gates = gatherElements(probs, Int32Array.from(tok, (t, i) => t * E + exp[i]!));
    const chosen = exp;
    const b = this.spec;
    if (b.capacityFactor !== undefined && (ctx.training || b.capacityAtEval)) {
      const kept = applyCapacity({ tokens: tok, experts: exp, ranks: Int32Array.from(ranks), scores: gates.data }, E,
        expertCapacity(T, this.o.topK, E, b.capacityFactor), b.capacityPriority ?? 'position');
      if (kept.length < tok.length) {
        gates = gatherElements(gates, kept);
        tok = Int32Array.from(kept, (i) => tok[i]!);
        exp = Int32Array.from(kept, (i) => exp[i]!);
      }
    }
    let aux: AuxLoss[] = [];
    if (ctx.training) {
      aux = balanceAux(b, { logits, weight: this.weight, lbProbs: probs, experts: chosen });
      if (b.entropyCoef) aux.push({ name: 'dynamic_entropy', loss: scale(routingEntropy(logits, probs), b.entropyCoef) });
    }
    return { T, tokens: tok, experts: exp, gates, logits, aux };
  }
}
