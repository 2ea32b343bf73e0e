/**
 * ReLU routing with adaptive L1 sparsity control (Wang, Zhu, Chen, "ReMoE: Fully Differentiable Mixture-of-Experts
 * with ReLU Routing", ICLR 2025, arXiv:2412.14711 §3):
 *   R = ReLU(W x) [T, E]; every (t, e) with R > 0 is a slot with gate R[t, e] — a variable number of experts per
 *   token, and the gate reaches 0 continuously, so routing is fully differentiable (no top-k).
 *   Sparsity regulariser (load-balancing refined L1, eq. 8): L_reg = λ · (1/T) Σ_t Σ_e f_e · R[t, e] with
 *   f_e = E / (k · T) · #{t : R[t, e] > 0} (constant in the backward pass); balancedL1: false uses f_e = 1 (eq. 6).
 *   λ adapts after every step (eq. 7): λ ← λ · α^{sign(target − S)}, S = fraction of zero gates in the step,
 *   target = 1 − k/E (k = targetActive, default the model's top-k); α = l1Multiplier (default 1.2), λ₀ = l1Init
 *   (default 1e-8). The paper shares one λ across layers using the mean sparsity over layers; here each layer's
 *   router adapts its own λ toward the same target (so per-layer sparsity is controlled too).
 * Parameters: `${prefix}.gate.weight` [E, D]. State: `${prefix}.gate.l1_coef` [1] (λ; training only).
 */
import { constant, type Var } from '../../train/autograd/var.js';
import { mul, relu, scale } from '../../train/autograd/ops/elementwise.js';
import { linear } from '../../train/autograd/ops/linear.js';
import { sum } from '../../train/autograd/ops/reduce.js';
import { gatherElements } from '../../train/autograd/ops/shape.js';
import type { RouterSpec } from './router.js';
import type { RouterContext, SlotRouting, TrainableRouterOptions } from './trainable.js';
import { ZooRouterBase, balanceAux, type AuxLoss } from './zoo-common.js';

type Spec = Extract<RouterSpec, { kind: 'relu' }>;

/** The ReMoE λ update: λ · α^{sign(target − sparsity)}. */
export function adaptL1(lambda: number, sparsity: number, target: number, alpha: number): number {
  return lambda * Math.pow(alpha, Math.sign(target - sparsity));
}

export class ReluRouter extends ZooRouterBase {
  readonly name = 'relu';
  /** The current L1 coefficient λ. */
  lambda: number;
  readonly targetActive: number;
  readonly stateName: string;

  constructor(readonly spec: Spec, o: TrainableRouterOptions) {
    super(o, o.numExperts);
    this.targetActive = spec.targetActive ?? o.topK;
    if (!(this.targetActive > 0 && this.targetActive <= o.numExperts)) throw new Error(`${this.name}: targetActive must be in (0, ${o.numExperts}]`);
    if ((spec.l1Multiplier ?? 1.2) <= 1) throw new Error(`${this.name}: l1Multiplier must be > 1`);
    this.lambda = spec.l1Init ?? 1e-8;
    this.stateName = `${o.prefix}.gate.l1_coef`;
  }

  /** Target fraction of zero gates, 1 − k/E. */
  get targetSparsity(): number {
    return 1 - this.targetActive / this.numExperts;
  }

  route(x: Var, ctx: RouterContext): SlotRouting {
    const T = this.checkX(x);
    const E = this.numExperts;
    const logits = linear(x, this.weight);
    const R = relu(logits);
    const idx: number[] = [];
    for (let i = 0; i < T * E; i++) if (R.data[i]! > 0) idx.push(i);
    const flat = Int32Array.from(idx);
    const tokens = Int32Array.from(flat, (i) => Math.floor(i / E));
    const experts = Int32Array.from(flat, (i) => i % E);
    const gates = gatherElements(R, flat);
    let aux: AuxLoss[] = [];
    if (ctx.training) {
      aux = balanceAux(this.spec, { logits, weight: this.weight });
      const f = R.isF64 ? new Float64Array(E) : new Float32Array(E);
      if (this.spec.balancedL1 ?? true) {
        for (const e of experts) f[e]! += 1;
        for (let e = 0; e < E; e++) f[e] = T ? (E * f[e]!) / (this.targetActive * T) : 0;
      } else f.fill(1);
      // λ · (1/T) Σ_t Σ_e f_e R[t, e]
      if (T) aux.push({ name: 'relu_l1', loss: scale(sum(mul(R, constant(f, [E]))), this.lambda / T) });
    }
    return { T, tokens, experts, gates, logits, aux };
  }

  /** Fraction of zero gates over the routings of one step. */
  sparsity(r: readonly SlotRouting[]): number {
    let active = 0;
    let total = 0;
    for (const s of r) { active += s.experts.length; total += s.T * this.numExperts; }
    return total ? 1 - active / total : this.targetSparsity;
  }

  afterStep(r: readonly SlotRouting[]): void {
    this.lambda = adaptL1(this.lambda, this.sparsity(r), this.targetSparsity, this.spec.l1Multiplier ?? 1.2);
  }

  state(): Record<string, number[]> {
    return { [this.stateName]: [this.lambda] };
  }

  loadState(s: Record<string, number[]>): void {
    const v = s[this.stateName];
    if (v && v.length === 1) this.lambda = v[0]!;
  }
}
