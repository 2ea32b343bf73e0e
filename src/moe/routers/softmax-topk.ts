/**
 * Softmax top-k routing (Shazeer et al. 2017, "Outrageously Large Neural Networks"; GShard; Mixtral).
 * p = softmax(logits); pick the k largest; gates = p_top (÷ Σ p_top when `normTopK`, as Mixtral/Qwen3 do;
 * raw probabilities for Qwen2-MoE/OLMoE).
 */
import { softmaxRows, topkIndices } from '../../backend/cpu/softmax.js';
import type { Router, Routing } from './router.js';

export class SoftmaxTopKRouter implements Router {
  readonly name = 'softmax-topk';
  constructor(readonly numExperts: number, readonly topK: number, readonly normTopK: boolean) {}

  route(logits: Float32Array, T: number): Routing {
    const E = this.numExperts;
    const k = this.topK;
    const scores = softmaxRows(Float32Array.from(logits), E);
    const experts = new Int32Array(T * k);
    const gates = new Float32Array(T * k);
    const sel = new Int32Array(k);
    for (let t = 0; t < T; t++) {
      topkIndices(scores, E, k, t * E, sel);
      let sum = 0;
      for (let j = 0; j < k; j++) sum += scores[t * E + sel[j]!]!;
      for (let j = 0; j < k; j++) {
        experts[t * k + j] = sel[j]!;
        const p = scores[t * E + sel[j]!]!;
        gates[t * k + j] = this.normTopK ? p / sum : p;
      }
    }
    return { T, k, E, logits, scores, experts, gates };
  }
}
