/**
 * The Switch/GShard load-balancing loss as transformers computes it (`load_balancing_loss_func`, used by Mixtral,
 * Qwen2/3-MoE, OLMoE, Granite-MoE, Phi-MoE, GPT-OSS), differentiable:
 *   p = softmax(router logits of all MoE layers concatenated) [N, E]; chosen = top-k of each row of p;
 *   f[j, e] = fraction of rows whose j-th choice is e (a constant: no gradient through the selection);
 *   P[e] = mean_rows p[:, e];  loss = E · Σ_j Σ_e f[j, e] · P[e] = E · Σ_e c_e · P[e], c_e = Σ_j f[j, e].
 * The gradient flows through P (the softmax of every layer's logits). Forward value: moe/balance/load-balancing-loss.ts.
 */
import { constant, type Var } from '../autograd/var.js';
import { mul, scale } from '../autograd/ops/elementwise.js';
import { sum, meanRows } from '../autograd/ops/reduce.js';
import { concatRows } from '../autograd/ops/shape.js';
import { softmax } from '../autograd/ops/softmax.js';
import { topkIndices } from '../../backend/cpu/softmax.js';

/** layerLogits: [T_l, E] per MoE layer (equal E). */
export function loadBalancingLossVar(layerLogits: readonly Var[], topK: number): Var {
  if (!layerLogits.length) throw new Error('load-balancing loss: no router logits');
  const E = layerLogits[0]!.shape[layerLogits[0]!.shape.length - 1]!;
  for (const l of layerLogits) {
    if (l.shape.length !== 2 || l.shape[1] !== E) throw new Error(`load-balancing loss: router logits [${l.shape.join(', ')}], expected [T, ${E}]`);
  }
  const all = layerLogits.length === 1 ? layerLogits[0]! : concatRows(layerLogits);
  const p = softmax(all);
  const N = p.size / E;
  const counts = new Float64Array(E);
  const sel = new Int32Array(topK);
  // Selection on float32 probabilities, like the inference forward (ties to the lower index, as torch.topk).
  const pf = p.data instanceof Float32Array ? p.data : Float32Array.from(p.data);
  for (let t = 0; t < N; t++) {
    topkIndices(pf, E, topK, t * E, sel);
    for (let j = 0; j < topK; j++) counts[sel[j]!]!++;
  }
  const c = p.isF64 ? new Float64Array(E) : new Float32Array(E);
  for (let e = 0; e < E; e++) c[e] = counts[e]! / N;
  return scale(sum(mul(meanRows(p), constant(c, [E]))), E);
}

