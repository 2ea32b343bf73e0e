/** A trainable RMSNorm / LayerNorm from a NormSpec (weights `${name}.weight`, LayerNorm bias `${name}.bias`). */
import type { NormSpec } from '../../models/spec.js';
import type { Var } from '../autograd/var.js';
import { layerNorm, rmsNorm } from '../autograd/ops/norm.js';
import type { ParamStore } from './params.js';

export class TrainableNorm {
  readonly weight: Var;
  readonly bias?: Var;
  constructor(readonly spec: NormSpec, D: number, store: ParamStore) {
    this.weight = store.param(`${spec.name}.weight`, [D], 'ones');
    if (spec.kind === 'layer' && spec.bias) this.bias = store.param(`${spec.name}.bias`, [D], 'zeros');
  }
  apply(x: Var): Var {
    return this.spec.kind === 'rms' ? rmsNorm(x, this.weight, this.spec.eps) : layerNorm(x, this.weight, this.bias, this.spec.eps);
  }
}
