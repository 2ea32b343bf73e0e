/** STUB (owned by the trainable-model work): RouterSpec → TrainableRouter for the standard kinds; others go to zoo.ts. */
import type { RouterSpec } from './router.js';
import type { TrainableRouter, TrainableRouterOptions } from './trainable.js';
import { makeZooRouter } from './zoo.js';

export function makeTrainableRouter(spec: RouterSpec, o: TrainableRouterOptions): TrainableRouter {
  return makeZooRouter(spec, o);
}
