/** Router factory: one RouterSpec → one routing rule from this folder. */
import type { Checkpoint } from '../../io/checkpoint.js';
import type { Router, RouterSpec } from './router.js';
import { SoftmaxTopKRouter } from './softmax-topk.js';
import { TopKSoftmaxRouter } from './topk-softmax.js';
import { SigmoidGroupTopKRouter } from './sigmoid-group-topk.js';
import { GroupLimitedGreedyRouter } from './group-limited-greedy.js';
import { SparseMixerRouter } from './sparsemixer.js';

export function makeRouter(spec: RouterSpec, E: number, k: number, ck: Checkpoint): Router {
  switch (spec.kind) {
    case 'softmax-topk':
      return new SoftmaxTopKRouter(E, k, spec.normTopK);
    case 'topk-softmax':
      return new TopKSoftmaxRouter(E, k);
    case 'sigmoid-group-topk':
      return new SigmoidGroupTopKRouter(E, k, spec, ck.weight(spec.biasName, { shape: [E] }).data as Float32Array);
    case 'group-limited-greedy':
      return new GroupLimitedGreedyRouter(E, k, spec);
    case 'sparsemixer':
      return new SparseMixerRouter(E, k, spec.jitterEps);
    default:
      // The research routers (zoo.ts) are trainable-only; the MoE block runs them through their TrainableRouter.
      throw new Error(`router ${spec.kind} has no inference-only implementation (it is a trainable zoo router)`);
  }
}
