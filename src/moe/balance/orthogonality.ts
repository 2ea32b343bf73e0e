/**
 * Soft orthogonality regulariser between expert / router vectors, as GMoPE uses to keep experts from collapsing
 * onto each other (Wang, Zhang, Wang, Xie, Kang, "GMoPE: A Prompt-Expert Mixture Framework for Graph Foundation
 * Models", 2025, arXiv:2511.03251 — there on the per-expert prompt vectors; here on the rows of the router weight,
 * the per-expert vectors an LLM MoE has):
 *   Ŵ = W with each row scaled to unit L2 norm;  loss = ‖Ŵ Ŵᵀ − I‖²_F = Σ_{i≠j} cos²(w_i, w_j).
 * The diagonal of Ŵ Ŵᵀ is 1 by construction, so only the pairwise cosines contribute; 0 iff the rows are mutually
 * orthogonal. (I could not retrieve the paper's exact normalisation of this sum; we use the plain squared
 * Frobenius norm and let the coefficient carry the scale.)
 */
import { constant, type Var } from '../../train/autograd/var.js';
import { addScalar, exp, log, scale, square, sub } from '../../train/autograd/ops/elementwise.js';
import { sum, sumCols } from '../../train/autograd/ops/reduce.js';
import { scaleRows } from '../../train/autograd/ops/shape.js';
import { linear } from '../../train/autograd/ops/linear.js';

export function softOrthogonalityLoss(w: Var, eps = 1e-12): Var {
  if (w.shape.length !== 2) throw new Error(`orthogonality loss: expects a matrix, got [${w.shape.join(', ')}]`);
  const R = w.shape[0]!;
  const invNorm = exp(scale(log(addScalar(sumCols(square(w)), eps)), -0.5)); // [R]: 1/‖w_r‖
  const wn = scaleRows(w, invNorm);
  const gram = linear(wn, wn); // [R, R] = Ŵ Ŵᵀ
  const I = w.isF64 ? new Float64Array(R * R) : new Float32Array(R * R);
  for (let r = 0; r < R; r++) I[r * R + r] = 1;
  return sum(square(sub(gram, constant(I, [R, R]))));
}
