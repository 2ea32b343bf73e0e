/**
 * MoE++ zero-computation experts with gating residuals (Jin, Zhu, Yuan, Yan, "MoE++: Accelerating Mixture-of-Experts
 * Methods with Zero-Computation Experts", 2024, arXiv:2410.07348 §3):
 *   - extra ids after the E FFN experts, in this order: `zero` zero experts (E(x) = 0), `copy` copy experts
 *     (E(x) = x), `constant` constant experts (E(x) = α₁·x + α₂·v_j with [α₁, α₂] = softmax(W_c,j · x), v_j and W_c,j
 *     trainable — implemented by `constantExpert`);
 *   - gating residuals: G_l(x) = W_l · x + W_g,l · G_{l−1}(x), the previous MoE++ layer's routing logits reaching
 *     this layer through RouterContext.carry (key 'moe++.logits'); the first layer (or gatingResidual: false) has
 *     none;
 *   - p = softmax(G_l(x)) over all E' ids, top-k, gates = p (÷ Σ chosen when normTopK; default false);
 *   - heterogeneous load balancing: Switch loss with η = 1 on FFN experts and τ on the zero-computation ones, so
 *     the router is free to send more tokens to the cheap experts (τ defaults to 0.75, which I believe is the
 *     paper's setting but could not re-check; pass `tau` explicitly when it matters).
 * Parameters: `${prefix}.gate.weight` [E', D]; `${prefix}.gate.residual.weight` [E', E'] (gating residual, starts at
 * zero so a fresh model routes like plain top-k); per constant expert j (0-based among the constant experts):
 * `${prefix}.constant_experts.${j}.vector` [D] and `${prefix}.constant_experts.${j}.gate.weight` [2, D].
 */
import type { Var } from '../../train/autograd/var.js';
import { add } from '../../train/autograd/ops/elementwise.js';
import { linear } from '../../train/autograd/ops/linear.js';
import { reshape, scaleRows, sliceCols } from '../../train/autograd/ops/shape.js';
import { softmax } from '../../train/autograd/ops/softmax.js';
import type { RouterSpec } from './router.js';
import type { ExpertKind, RouterContext, SlotRouting, TrainableRouterOptions } from './trainable.js';
import { ZooRouterBase, initParam, tokenChoiceRoute, zeroParam } from './zoo-common.js';

type Spec = Extract<RouterSpec, { kind: 'moe-plus-plus' }>;

export const MOEPP_CARRY = 'moe++.logits';

export class MoePlusPlusRouter extends ZooRouterBase {
  readonly name = 'moe-plus-plus';
  override readonly extraExperts: readonly ExpertKind[];
  readonly residual?: Var;
  readonly constVectors: Var[] = [];
  readonly constGates: Var[] = [];
  private readonly lbWeights: Float64Array;

  constructor(readonly spec: Spec, o: TrainableRouterOptions) {
    const counts = [spec.zero, spec.copy, spec.constant];
    if (counts.some((c) => !Number.isInteger(c) || c < 0)) throw new Error(`moe-plus-plus: zero/copy/constant must be non-negative integers, got ${counts.join('/')}`);
    const Eall = o.numExperts + spec.zero + spec.copy + spec.constant;
    super(o, Eall);
    if (o.topK < 1 || o.topK > Eall) throw new Error(`${this.name}: top-k ${o.topK} must be in 1..${Eall}`);
    this.extraExperts = [
      ...Array.from({ length: spec.zero }, () => 'zero' as const),
      ...Array.from({ length: spec.copy }, () => 'copy' as const),
      ...Array.from({ length: spec.constant }, () => 'constant' as const),
    ];
    if (spec.gatingResidual) this.residual = zeroParam(o, `${o.prefix}.gate.residual.weight`, [Eall, Eall]);
    for (let j = 0; j < spec.constant; j++) {
      this.constVectors.push(initParam(o, `${o.prefix}.constant_experts.${j}.vector`, [o.D], 1));
      this.constGates.push(initParam(o, `${o.prefix}.constant_experts.${j}.gate.weight`, [2, o.D]));
    }
    const tau = spec.tau ?? 0.75;
    this.lbWeights = Float64Array.from({ length: Eall }, (_, e) => (e < o.numExperts ? 1 : tau));
  }

  override params(): Var[] {
    return [this.weight, ...(this.residual ? [this.residual] : []), ...this.constVectors.flatMap((v, j) => [v, this.constGates[j]!])];
  }

  route(x: Var, ctx: RouterContext): SlotRouting {
    const T = this.checkX(x);
    let logits = linear(x, this.weight);
    if (this.residual) {
      const prev = ctx.carry.get(MOEPP_CARRY) as Var | undefined;
      if (prev) {
        if (prev.shape[0] !== T || prev.shape[1] !== logits.shape[1]) {
          throw new Error(`${this.name}: previous layer's logits are [${prev.shape.join(', ')}], this layer's [${logits.shape.join(', ')}]`);
        }
        logits = add(logits, linear(prev, this.residual));
      }
    }
    ctx.carry.set(MOEPP_CARRY, logits);
    return tokenChoiceRoute(logits, this.weight, {
      score: 'softmax', k: this.o.topK, E: this.numExperts, normTopK: this.spec.normTopK ?? false, balance: this.spec,
      lbWeights: this.lbWeights,
    }, ctx);
  }

  /** α₁·x + α₂·v_j, [α₁, α₂] = softmax(W_c,j x), for the rows x [n, D] routed to expert id `id`. */
  constantExpert(x: Var, id: number): Var {
    const j = id - this.numExperts - this.spec.zero - this.spec.copy;
    if (j < 0 || j >= this.spec.constant) throw new Error(`${this.name}: expert id ${id} is not a constant expert`);
    const n = x.shape[0]!;
    const alpha = softmax(linear(x, this.constGates[j]!)); // [n, 2]
    const a1 = reshape(sliceCols(alpha, 0, 1), [n]);
    const a2 = sliceCols(alpha, 1, 2); // [n, 1]
    return add(scaleRows(x, a1), linear(a2, reshape(this.constVectors[j]!, [this.o.D, 1])));
  }
}
