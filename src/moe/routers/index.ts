/** Router factory: one RouterSpec → one routing rule from this folder. */
import type { WeightSource } from '../../io/weight-source.js';
import type { Router, RouterSpec } from './router.js';
import { SoftmaxTopKRouter } from './softmax-topk.js';
import { TopKSoftmaxRouter } from './topk-softmax.js';
import { SigmoidGroupTopKRouter } from './sigmoid-group-topk.js';
import { GroupLimitedGreedyRouter } from './group-limited-greedy.js';
import { SparseMixerRouter } from './sparsemixer.js';

export function makeRouter(spec: RouterSpec, E: number, k: number, ck: WeightSource): Router {
  const bias = spec.kind === 'sigmoid-group-topk' ? ck.weight(spec.biasName, { shape: [E] }).data as Float32Array : undefined;
  return makeRouterWithBias(spec, E, k, bias);
}

/** makeRouter with the DeepSeek-V3 correction bias given directly (required for 'sigmoid-group-topk'). */
export function makeRouterWithBias(spec: RouterSpec, E: number, k: number, bias?: Float32Array): Router {
  switch (spec.kind) {
    case 'softmax-topk':
      return new SoftmaxTopKRouter(E, k, spec.normTopK);
    case 'topk-softmax':
      return new TopKSoftmaxRouter(E, k);
    case 'sigmoid-group-topk':
      if (!bias) throw new Error(`router sigmoid-group-topk needs its correction bias ${spec.biasName}`);
      return new SigmoidGroupTopKRouter(E, k, spec, bias);
    case 'group-limited-greedy':
      return new GroupLimitedGreedyRouter(E, k, spec);
    case 'sparsemixer':
      return new SparseMixerRouter(E, k, spec.jitterEps);
    default:
      // The research routers (zoo.ts) are trainable-only; the MoE block runs them through their TrainableRouter.
      throw new Error(`router ${spec.kind} has no inference-only implementation (it is a trainable zoo router)`);
  }
}
