/**
 * Softmax top-k routing (Shazeer et al. 2017, "Outrageously Large Neural Networks"; GShard; Mixtral).
 * p = softmax(logits); pick the k largest; gates = p_top (÷ Σ p_top when `normTopK`, as Mixtral/Qwen3 do;
 * raw probabilities for Qwen2-MoE/OLMoE).
 */
import { softmaxRows, topkIndices } from '../../backend/cpu/softmax.js';
import type { Router, Routing } from './router.js';
import type { Var } from '../../train/autograd/var.js';
import { gatherElements, reshape } from '../../train/autograd/ops/shape.js';
import { softmax } from '../../train/autograd/ops/softmax.js';
import { ProjectedTopKRouter, type StandardRouterOptions } from './trainable-base.js';

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

/**
 * Trainable softmax top-k: logits = x·Wᵀ (+ b); the experts are the inference rule's choice on the f32 logits; the
 * gates are the chosen softmax probabilities, differentiable back to W and x. Renormalised gates p_i / Σ_top p_j are
 * computed as the softmax over the k chosen logits, the same function of the logits (so the same gradient).
 */
export class TrainableSoftmaxTopKRouter extends ProjectedTopKRouter {
  readonly name = 'softmax-topk';

  constructor(o: StandardRouterOptions, readonly normTopK: boolean) {
    super(o, new SoftmaxTopKRouter(o.numExperts, o.topK, normTopK));
  }

  protected gates(logits: Var, r: Routing, flat: Int32Array): Var {
    return this.normTopK
      ? reshape(softmax(reshape(gatherElements(logits, flat), [r.T, r.k])), [r.T * r.k])
      : gatherElements(softmax(logits), flat);
  }
}
