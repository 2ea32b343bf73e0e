/**
 * RouterSpec → TrainableRouter. The standard rules (each class lives beside its inference rule and selects with it)
 * are made here; every other kind goes to the research-router zoo.
 */
import type { RouterSpec } from './router.js';
import type { TrainableRouter, TrainableRouterOptions } from './trainable.js';
import type { StandardRouterOptions } from './trainable-base.js';
import { TrainableSoftmaxTopKRouter } from './softmax-topk.js';
import { TrainableTopKSoftmaxRouter } from './topk-softmax.js';
import { TrainableSigmoidGroupTopKRouter } from './sigmoid-group-topk.js';
import { TrainableGroupLimitedGreedyRouter } from './group-limited-greedy.js';
import { makeZooRouter } from './zoo.js';

export type { StandardRouterOptions } from './trainable-base.js';

/** `o` may carry the standard routers' extras (tensor names, init std, bias update rate); the zoo ignores them. */
export function makeTrainableRouter(spec: RouterSpec, o: TrainableRouterOptions | StandardRouterOptions): TrainableRouter {
  switch (spec.kind) {
    case 'softmax-topk':
      return new TrainableSoftmaxTopKRouter(o, spec.normTopK);
    case 'topk-softmax':
      return new TrainableTopKSoftmaxRouter(o);
    case 'sigmoid-group-topk':
      return new TrainableSigmoidGroupTopKRouter(o, spec);
    case 'group-limited-greedy':
      return new TrainableGroupLimitedGreedyRouter(o, spec);
    default:
      return makeZooRouter(spec, o);
  }
}
