/**
 * Expert-choice routing (Zhou, Lei, Liu, Du, Huang, Zhao, Dai, Chen, Le, Laudon, "Mixture-of-Experts with Expert
 * Choice Routing", 2022, arXiv:2202.09368 §3.1): instead of tokens picking experts, each expert picks tokens.
 *   S = softmax(W x) over experts, [T, E];  C = min(T, ⌈capacityFactor · T · k / E⌉)  (the paper's k = n·c/e with
 *   c = capacityFactor · k the average experts per token);  expert e takes the C tokens with the largest S[:, e]
 *   (ties → lower token index); gate = S[t, e].
 * Perfect load balance by construction: every expert gets exactly C slots, so with T·k/E integral and cf = 1 each
 * gets T·k/E. Tokens may get any number of experts, including none. The paper uses no balancing loss; z-loss and
 * orthogonality are available. Routing depends on the other tokens of the batch, so it is not causal: KV-cached
 * decoding of an expert-choice model does not reproduce a full-sequence forward (it routes the tokens it is given).
 * Slots are expert-major (expert 0's tokens by descending score, then expert 1's, ...).
 * Parameters: `${prefix}.gate.weight` [E, D].
 */
import type { Var } from '../../train/autograd/var.js';
import { linear } from '../../train/autograd/ops/linear.js';
import { gatherElements } from '../../train/autograd/ops/shape.js';
import { softmax } from '../../train/autograd/ops/softmax.js';
import type { RouterSpec } from './router.js';
import type { RouterContext, SlotRouting, TrainableRouterOptions } from './trainable.js';
import { ZooRouterBase, balanceAux, topkAllowed } from './zoo-common.js';

type Spec = Extract<RouterSpec, { kind: 'expert-choice' }>;

export function expertChoiceCapacity(T: number, k: number, E: number, cf: number): number {
  if (!(cf > 0)) throw new Error(`expert-choice: capacity factor must be > 0, got ${cf}`);
  return Math.min(T, Math.ceil((cf * T * k) / E));
}

export class ExpertChoiceRouter extends ZooRouterBase {
  readonly name = 'expert-choice';
  constructor(readonly spec: Spec, o: TrainableRouterOptions) {
    super(o, o.numExperts);
    if (o.topK < 1) throw new Error(`${this.name}: k (average experts per token) must be ≥ 1`);
  }

  route(x: Var, ctx: RouterContext): SlotRouting {
    const T = this.checkX(x);
    const E = this.numExperts;
    const logits = linear(x, this.weight);
    const probs = softmax(logits);
    const C = T === 0 ? 0 : expertChoiceCapacity(T, this.o.topK, E, this.spec.capacityFactor ?? 1);
    // Column e of S, gathered once per expert, then its top-C rows.
    const col = new Float64Array(T);
    const sel = new Int32Array(C);
    const tokens = new Int32Array(E * C);
    const experts = new Int32Array(E * C);
    for (let e = 0; e < E; e++) {
      for (let t = 0; t < T; t++) col[t] = probs.data[t * E + e]!;
      topkAllowed(col, 0, T, C, sel);
      for (let j = 0; j < C; j++) { tokens[e * C + j] = sel[j]!; experts[e * C + j] = e; }
    }
    const idx = Int32Array.from(tokens, (t, i) => t * E + experts[i]!);
    const gates = gatherElements(probs, idx);
    const aux = ctx.training ? balanceAux(this.spec, { logits, weight: this.weight }) : [];
    return { T, tokens, experts, gates, logits, aux };
  }
}
