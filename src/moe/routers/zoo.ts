/** STUB (owned by the router-zoo work): RouterSpec → TrainableRouter for the research routers. */
import type { RouterSpec } from './router.js';
import type { TrainableRouter, TrainableRouterOptions } from './trainable.js';

export function makeZooRouter(spec: RouterSpec, _o: TrainableRouterOptions): TrainableRouter {
  throw new Error(`no trainable router for ${spec.kind}`);
}
