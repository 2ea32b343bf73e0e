/**
 * Router z-loss (Zoph et al., "ST-MoE: Designing Stable and Transferable Sparse Expert Models", 2022,
 * arXiv:2202.08906, eq. 5): z = (1/T) Σ_t (log Σ_e exp(logits[t, e]))². Penalises large router logits, which keeps
 * the router's softmax numerically stable. `logits` is [T, E].
 */
import type { Var } from '../../train/autograd/var.js';
import { square } from '../../train/autograd/ops/elementwise.js';
import { logSumExp, mean } from '../../train/autograd/ops/reduce.js';

export function routerZLoss(logits: Var): Var {
  if (logits.shape.length !== 2) throw new Error(`z-loss: logits must be [T, E], got [${logits.shape.join(', ')}]`);
  return mean(square(logSumExp(logits)));
}
