/**
 * Sigmoid routing with auxiliary-loss-free bias balancing (Wang, Gao, Zhao, Sun, Dai, "Auxiliary-Loss-Free Load
 * Balancing Strategy for Mixture-of-Experts", 2024, arXiv:2408.15664; as deployed in DeepSeek-AI, "DeepSeek-V3
 * Technical Report", 2024, arXiv:2412.19437 §2.1.2):
 *   s = sigmoid(W x); choose the top-k of s + b (optionally group-limited: keep the topkGroup of nGroup groups by the
 *   sum of each group's two best biased scores); gates = s_chosen (÷ (Σ s_chosen + 1e-20) when normTopK) × scaling.
 *   After each optimiser step: b_e += u · sign(mean load − load_e) (src/moe/balance/aux-free-bias.ts).
 * Parameters: `${prefix}.gate.weight` [E, D]. State (no gradient): `${prefix}.gate.e_score_correction_bias` [E]
 * (DeepSeek-V3's tensor name, so inference loads it from the checkpoint under that name).
 */
import type { Var } from '../../train/autograd/var.js';
import { linear } from '../../train/autograd/ops/linear.js';
import type { RouterSpec } from './router.js';
import type { RouterContext, SlotRouting, TrainableRouterOptions } from './trainable.js';
import { ZooRouterBase, checkGroups, tokenChoiceRoute, type GroupLimit } from './zoo-common.js';
import { auxFreeBiasUpdate, expertLoad } from '../balance/aux-free-bias.js';

type Spec = Extract<RouterSpec, { kind: 'aux-free-sigmoid' }>;

export class AuxFreeSigmoidRouter extends ZooRouterBase {
  readonly name = 'aux-free-sigmoid';
  /** Selection bias b [E]. */
  readonly bias: Float64Array;
  readonly biasName: string;
  private readonly groups?: GroupLimit;

  constructor(readonly spec: Spec, o: TrainableRouterOptions) {
    super(o, o.numExperts);
    if (o.topK < 1 || o.topK > o.numExperts) throw new Error(`${this.name}: top-k ${o.topK} must be in 1..${o.numExperts}`);
    this.bias = new Float64Array(o.numExperts);
    this.biasName = `${o.prefix}.gate.e_score_correction_bias`;
    if ((spec.nGroup ?? 1) > 1) {
      this.groups = { nGroup: spec.nGroup!, topkGroup: spec.topkGroup ?? 1, groupScore: 'top2-sum' };
      checkGroups(this.name, o.numExperts, this.groups);
    }
  }

  route(x: Var, ctx: RouterContext): SlotRouting {
    this.checkX(x);
    return tokenChoiceRoute(linear(x, this.weight), this.weight, {
      score: 'sigmoid', k: this.o.topK, E: this.numExperts, normTopK: this.spec.normTopK, scaling: this.spec.scaling,
      selectionBias: this.bias, groups: this.groups, balance: this.spec,
    }, ctx);
  }

  afterStep(r: readonly SlotRouting[]): void {
    auxFreeBiasUpdate(this.bias, expertLoad(r, this.numExperts), this.spec.biasUpdateRate ?? 1e-3);
  }

  state(): Record<string, number[]> {
    return { [this.biasName]: Array.from(this.bias) };
  }

  loadState(s: Record<string, number[]>): void {
    const b = s[this.biasName];
    if (!b) return;
    if (b.length !== this.numExperts) throw new Error(`${this.name}: ${this.biasName} has ${b.length} values, expected ${this.numExperts}`);
    this.bias.set(b);
  }
}
