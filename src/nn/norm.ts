/** A loaded RMSNorm or LayerNorm (from a NormSpec). */
import type { WeightSource } from '../io/weight-source.js';
import type { NormSpec } from '../models/spec.js';
import { rmsNorm, layerNorm } from '../backend/cpu/norm.js';

export class Norm {
  private w: Float32Array;
  private b?: Float32Array;
  constructor(private spec: NormSpec, D: number, ck: WeightSource) {
    this.w = ck.weight(`${spec.name}.weight`, { shape: [D] }).data as Float32Array;
    if (spec.bias) this.b = ck.weight(`${spec.name}.bias`, { shape: [D] }).data as Float32Array;
  }
  apply(x: Float32Array): Float32Array {
    return this.spec.kind === 'rms' ? rmsNorm(x, this.w, this.spec.eps) : layerNorm(x, this.w, this.b, this.spec.eps);
  }
}
