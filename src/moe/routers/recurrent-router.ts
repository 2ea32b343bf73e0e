/**
 * Layerwise recurrent router (Qiu et al., "Layerwise Recurrent Router for Mixture-of-Experts",
 * ICLR 2025, arXiv:2408.06793 §3): the routing decision of layer l depends on the routing state of layer l − 1
 * through a GRU that runs *across layers* (not across tokens):
 *   x'_l = P_l · x_l                                  (projection to projDim)
 *   h_l  = GRU(x'_l, h_{l−1}),  h_0 = 0               (h carried between layers in RouterContext.carry, key 'rmoe.h')
 *   logits_l = W_l · h_l; softmax top-k (÷ Σ chosen when normTopK) + the ZooBalance losses.
 * GRU (PyTorch's equations and gate order r, z, n):
 *   r = σ(W_ir x' + b_ir + W_hr h + b_hr), z = σ(W_iz x' + b_iz + W_hz h + b_hz),
 *   n = tanh(W_in x' + b_in + r ⊙ (W_hn h + b_hn)),   h' = (1 − z) ⊙ n + z ⊙ h.
 * Gradients flow back through the carried state into earlier layers' routers. The paper shares one GRU across all
 * layers; here each layer owns its GRU (parameters are per layer-prefix), which keeps every router self-contained.
 * The carry is per token, so KV-cached decoding sees the same state as a full forward.
 * Parameters: `${prefix}.gate.weight` [E, H]; `${prefix}.router.proj.weight` [P, D];
 * `${prefix}.router.gru.weight_ih` [3H, P], `.weight_hh` [3H, H], `.bias_ih` [3H], `.bias_hh` [3H]
 * (P = projDim, H = hiddenDim, default P).
 */
import { constant, type Var } from '../../train/autograd/var.js';
import { add, mul, sigmoid, sub, tanh } from '../../train/autograd/ops/elementwise.js';
import { linear } from '../../train/autograd/ops/linear.js';
import { sliceCols } from '../../train/autograd/ops/shape.js';
import type { RouterSpec } from './router.js';
import type { RouterContext, SlotRouting, TrainableRouterOptions } from './trainable.js';
import { ZooRouterBase, initParam, newArray, tokenChoiceRoute } from './zoo-common.js';

type Spec = Extract<RouterSpec, { kind: 'recurrent' }>;

export const RMOE_CARRY = 'rmoe.h';

export class RecurrentRouter extends ZooRouterBase {
  readonly name = 'recurrent';
  readonly P: number;
  readonly H: number;
  readonly proj: Var;
  readonly wIh: Var;
  readonly wHh: Var;
  readonly bIh: Var;
  readonly bHh: Var;

  constructor(readonly spec: Spec, o: TrainableRouterOptions) {
    const P = spec.projDim;
    const H = spec.hiddenDim ?? P;
    if (!Number.isInteger(P) || P < 1 || !Number.isInteger(H) || H < 1) throw new Error(`recurrent: projDim / hiddenDim must be positive integers`);
    super(o, o.numExperts, H);
    if (o.topK < 1 || o.topK > o.numExperts) throw new Error(`${this.name}: top-k ${o.topK} must be in 1..${o.numExperts}`);
    this.P = P;
    this.H = H;
    const g = `${o.prefix}.router.gru`;
    const bound = 1 / Math.sqrt(H); // PyTorch's GRU init: U(−1/√H, 1/√H) for every tensor
    this.proj = initParam(o, `${o.prefix}.router.proj.weight`, [P, o.D]);
    this.wIh = initParam(o, `${g}.weight_ih`, [3 * H, P], bound);
    this.wHh = initParam(o, `${g}.weight_hh`, [3 * H, H], bound);
    this.bIh = initParam(o, `${g}.bias_ih`, [3 * H], bound);
    this.bHh = initParam(o, `${g}.bias_hh`, [3 * H], bound);
  }

  override params(): Var[] {
    return [this.weight, this.proj, this.wIh, this.wHh, this.bIh, this.bHh];
  }

  /** One GRU step over T rows: h' from the projected input xp [T, P] and the previous state h [T, H]. */
  gru(xp: Var, h: Var): Var {
    const H = this.H;
    const gi = linear(xp, this.wIh, this.bIh);
    const gh = linear(h, this.wHh, this.bHh);
    const r = sigmoid(add(sliceCols(gi, 0, H), sliceCols(gh, 0, H)));
    const z = sigmoid(add(sliceCols(gi, H, 2 * H), sliceCols(gh, H, 2 * H)));
    const n = tanh(add(sliceCols(gi, 2 * H, 3 * H), mul(r, sliceCols(gh, 2 * H, 3 * H))));
    return add(n, mul(z, sub(h, n))); // (1 − z) n + z h
  }

  route(x: Var, ctx: RouterContext): SlotRouting {
    const T = this.checkX(x);
    let h = ctx.carry.get(RMOE_CARRY) as Var | undefined;
    if (h && (h.shape[0] !== T || h.shape[1] !== this.H)) {
      throw new Error(`${this.name}: carried state is [${h.shape.join(', ')}], this layer expects [${T}, ${this.H}]`);
    }
    h ??= constant(newArray(this.o.precision, T * this.H), [T, this.H]);
    const hNew = this.gru(linear(x, this.proj), h);
    ctx.carry.set(RMOE_CARRY, hNew);
    return tokenChoiceRoute(linear(hNew, this.weight), this.weight, {
      score: 'softmax', k: this.o.topK, E: this.numExperts, normTopK: this.spec.normTopK, balance: this.spec,
    }, ctx);
  }
}
