/** A dense gated MLP (SwiGLU): down(act(gate(x)) · up(x)). Used by dense layers and shared experts, on any backend. */
import type { WeightSource } from '../io/weight-source.js';
import type { DenseFfnSpec } from '../models/spec.js';
import type { DeviceOps } from '../backend/device-ops.js';
import type { FfnModule, FfnResult } from './ffn-module.js';
import type { ExpertWeights } from '../moe/experts.js';

export function loadGatedFfn(spec: DenseFfnSpec, D: number, ck: WeightSource, keepBf16: boolean): ExpertWeights {
  const F = ck.info(`${spec.gate}.weight`).shape[0]!;
  return {
    gate: ck.weight(`${spec.gate}.weight`, { keepBf16, shape: [F, D] }),
    up: ck.weight(`${spec.up}.weight`, { keepBf16, shape: [F, D] }),
    down: ck.weight(`${spec.down}.weight`, { keepBf16, shape: [D, F] }),
  };
}

export class DenseFfn<H, W> implements FfnModule<H> {
  private gate: W;
  private up: W;
  private down: W;
  readonly F: number;
  constructor(private readonly ops: DeviceOps<H, W, unknown>, private readonly spec: DenseFfnSpec, private readonly D: number, ck: WeightSource, keepBf16: boolean) {
    const w = loadGatedFfn(spec, D, ck, keepBf16);
    this.F = w.gate.shape[0]!;
    this.gate = ops.weight(w.gate);
    this.up = ops.weight(w.up);
    this.down = ops.weight(w.down);
  }

  /** x [T, D] → [T, D] as a backend tensor. */
  run(x: H, T: number): H {
    const o = this.ops;
    const g = o.linear(x, T, this.D, this.gate);
    const u = o.linear(x, T, this.D, this.up);
    o.gatedAct(g, u, T * this.F, { kind: this.spec.act });
    o.release(u);
    const y = o.linear(g, T, this.F, this.down);
    o.release(g);
    return y;
  }

  forward(x: H, T: number): FfnResult<H> {
    return { out: this.run(x, T) };
  }
}
