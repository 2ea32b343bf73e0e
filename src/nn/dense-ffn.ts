/** A dense gated MLP (SwiGLU): down(act(gate(x)) · up(x)). Used by dense layers and shared experts. */
import type { WeightSource } from '../io/weight-source.js';
import type { DenseFfnSpec } from '../models/spec.js';
import type { FfnModule, FfnResult } from './ffn-module.js';
import { gatedFfn, type ExpertWeights } from '../moe/experts.js';

export function loadGatedFfn(spec: DenseFfnSpec, D: number, ck: WeightSource, keepBf16: boolean): ExpertWeights {
  const F = ck.info(`${spec.gate}.weight`).shape[0]!;
  return {
    gate: ck.weight(`${spec.gate}.weight`, { keepBf16, shape: [F, D] }),
    up: ck.weight(`${spec.up}.weight`, { keepBf16, shape: [F, D] }),
    down: ck.weight(`${spec.down}.weight`, { keepBf16, shape: [D, F] }),
  };
}

export class DenseFfn implements FfnModule {
  private w: ExpertWeights;
  constructor(private spec: DenseFfnSpec, private D: number, ck: WeightSource, keepBf16: boolean) {
    this.w = loadGatedFfn(spec, D, ck, keepBf16);
  }
  forward(x: Float32Array, T: number): FfnResult {
    return { out: gatedFfn(x, T, this.D, this.w, { act: this.spec.act }) };
  }
}
