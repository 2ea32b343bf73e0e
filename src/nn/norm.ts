/** A loaded RMSNorm or LayerNorm (from a NormSpec), on any backend's ops. */
import type { WeightSource } from '../io/weight-source.js';
import type { NormSpec } from '../models/spec.js';
import type { DeviceOps } from '../backend/device-ops.js';

export class Norm<H, W> {
  private w: W;
  private b?: W;
  constructor(private readonly ops: DeviceOps<H, W, unknown>, private readonly spec: NormSpec, private readonly D: number, ck: WeightSource) {
    this.w = ops.vector(ck.weight(`${spec.name}.weight`, { shape: [D] }).data as Float32Array, `${spec.name}.weight`);
    if (spec.bias) this.b = ops.vector(ck.weight(`${spec.name}.bias`, { shape: [D] }).data as Float32Array, `${spec.name}.bias`);
  }
  /** h[rows, D] += s · a (the residual add, in place), then the norm of h → a new tensor (one fused op). */
  addApply(h: H, a: H, rows: number, s: number): H {
    return this.ops.addNorm(h, a, rows, this.D, s, { kind: this.spec.kind, w: this.w, b: this.b, eps: this.spec.eps });
  }
  /** x: [rows, D] → a new normalised tensor. */
  apply(x: H, rows: number): H {
    return this.spec.kind === 'rms'
      ? this.ops.rmsNorm(x, rows, this.D, this.w, this.spec.eps)
      : this.ops.layerNorm(x, rows, this.D, this.w, this.b, this.spec.eps);
  }
}
