/**
 * Top-k then softmax (GPT-OSS, Granite-MoE; the "TopKGating" of JetMoE/ModuleFormer): choose the k largest
 * logits, then gates = softmax over just those k. Gates always sum to 1 and unchosen experts get no probability mass.
 */
import { topkIndices } from '../../backend/cpu/softmax.js';
import type { Router, Routing } from './router.js';
import type { Var } from '../../train/autograd/var.js';
import { gatherElements, reshape } from '../../train/autograd/ops/shape.js';
import { softmax } from '../../train/autograd/ops/softmax.js';
import { ProjectedTopKRouter, type StandardRouterOptions } from './trainable-base.js';

export class TopKSoftmaxRouter implements Router {
  readonly name = 'topk-softmax';
  constructor(readonly numExperts: number, readonly topK: number) {}

  route(logits: Float32Array, T: number): Routing {
    const E = this.numExperts;
    const k = this.topK;
    const experts = new Int32Array(T * k);
    const gates = new Float32Array(T * k);
    const sel = new Int32Array(k);
    for (let t = 0; t < T; t++) {
      topkIndices(logits, E, k, t * E, sel);
      const m = logits[t * E + sel[0]!]!;
      let sum = 0;
      for (let j = 0; j < k; j++) {
        const e = Math.exp(logits[t * E + sel[j]!]! - m);
        gates[t * k + j] = e;
        sum += e;
      }
      for (let j = 0; j < k; j++) {
        experts[t * k + j] = sel[j]!;
        gates[t * k + j]! /= sum;
      }
    }
    return { T, k, E, logits, scores: logits, experts, gates };
  }
}

/**
 * Trainable top-k → softmax: the inference rule picks the k largest logits; the gates are the softmax over those k
 * logits, differentiable back to the router weight (and bias, GPT-OSS) and x.
 */
export class TrainableTopKSoftmaxRouter extends ProjectedTopKRouter {
  readonly name = 'topk-softmax';

  constructor(o: StandardRouterOptions) {
    super(o, new TopKSoftmaxRouter(o.numExperts, o.topK));
  }

  protected gates(logits: Var, r: Routing, flat: Int32Array): Var {
    return reshape(softmax(reshape(gatherElements(logits, flat), [r.T, r.k])), [r.T * r.k]);
  }
}
