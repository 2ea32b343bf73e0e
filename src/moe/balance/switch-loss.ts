/**
 * Switch Transformer / GShard load-balancing loss for one layer, differentiable (Fedus, Zoph, Shazeer, "Switch
 * Transformers: Scaling to Trillion Parameter Models with Simple and Efficient Sparsity", 2021, arXiv:2101.03961,
 * eqs. 4–6; Lepikhin et al., "GShard", 2020, arXiv:2006.16668):
 *   f_e = (slots routed to e) / (all slots)       — from the router's choices, not differentiable
 *   P_e = (1/T) Σ_t probs[t, e]                   — differentiable
 *   loss = E · Σ_e η_e · f_e · P_e                (η_e = 1 unless per-expert weights are given, e.g. MoE++'s τ)
 * With top-1 this is exactly Switch's N · Σ f_i P_i. For top-k the fraction is over the T·k slots (as DeepSeek's
 * expert-level balance loss normalises), so the loss is 1 at uniform load for every k; transformers'
 * `load_balancing_loss_func` (src/moe/balance/load-balancing-loss.ts) counts per token and equals k × this.
 * Variable-k routers (top-p, null experts) use the same definition over however many slots were chosen.
 * `probs` is [T, E'] over every id the router scores; `experts` are slot expert ids in 0..E'−1.
 */
import { constant, type Var } from '../../train/autograd/var.js';
import { mul } from '../../train/autograd/ops/elementwise.js';
import { sum } from '../../train/autograd/ops/reduce.js';

/** f_e = share of the slots that chose expert e (0 everywhere for no slots). */
export function loadFractions(experts: Int32Array, E: number): Float64Array {
  const f = new Float64Array(E);
  for (let i = 0; i < experts.length; i++) {
    const e = experts[i]!;
    if (e < 0 || e >= E) throw new Error(`load-balancing loss: expert ${e} of ${E}`);
    f[e]! += 1;
  }
  if (experts.length) for (let e = 0; e < E; e++) f[e]! /= experts.length;
  return f;
}

export function switchLoadBalancingLoss(probs: Var, experts: Int32Array, weights?: ArrayLike<number>): Var {
  if (probs.shape.length !== 2) throw new Error(`load-balancing loss: probs must be [T, E], got [${probs.shape.join(', ')}]`);
  const T = probs.shape[0]!;
  const E = probs.shape[1]!;
  if (weights && weights.length !== E) throw new Error(`load-balancing loss: ${weights.length} weights for ${E} experts`);
  const f = loadFractions(experts, E);
  // loss = Σ_t Σ_e probs[t, e] · c_e with c_e = E · η_e · f_e / T: one broadcast multiply and a sum.
  const c = probs.isF64 ? new Float64Array(E) : new Float32Array(E);
  for (let e = 0; e < E; e++) c[e] = T ? (E * (weights ? weights[e]! : 1) * f[e]!) / T : 0;
  return sum(mul(probs, constant(c, [E])));
}
