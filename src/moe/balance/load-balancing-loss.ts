/**
 * Switch Transformer / GShard load-balancing loss (Fedus et al. 2021, arXiv:2101.03961; Lepikhin et al. 2020),
 * in the form transformers uses for Mixtral, Qwen-MoE, OLMoE, Phi-MoE and GPT-OSS:
 *   p = softmax(router_logits) over all layers' tokens concatenated; chosen = top-k of p;
 *   f[j, e] = fraction of tokens whose j-th choice is e; P[e] = mean p[:, e];
 *   loss = E · Σ_j Σ_e f[j, e] · P[e].
 * Minimised (= k) when load and probability mass are uniform across experts.
 */
import { softmaxRows, topkIndices } from '../../backend/cpu/softmax.js';

export function loadBalancingLoss(layerLogits: readonly Float32Array[], E: number, k: number): number {
  const f = new Float64Array(k * E);
  const P = new Float64Array(E);
  let N = 0;
  const sel = new Int32Array(k);
  for (const logits of layerLogits) {
    const p = softmaxRows(Float32Array.from(logits), E);
    const T = p.length / E;
    for (let t = 0; t < T; t++) {
      topkIndices(p, E, k, t * E, sel);
      for (let j = 0; j < k; j++) f[j * E + sel[j]!]! += 1;
      for (let e = 0; e < E; e++) P[e]! += p[t * E + e]!;
    }
    N += T;
  }
  if (N === 0) return 0;
  let loss = 0;
  for (let j = 0; j < k; j++) for (let e = 0; e < E; e++) loss += (f[j * E + e]! / N) * (P[e]! / N);
  return loss * E;
}
