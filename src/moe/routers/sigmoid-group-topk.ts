/** STUB — to be implemented. */
import type { Router, Routing, RouterSpec } from './router.js';

export class SigmoidGroupTopKRouter implements Router {
  readonly name = 'sigmoid-group-topk';
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  constructor(readonly numExperts: number, readonly topK: number, ..._rest: unknown[]) {}
  route(_logits: Float32Array, _T: number): Routing {
    throw new Error('sigmoid-group-topk router not implemented yet');
  }
}
export type _Spec = RouterSpec;
