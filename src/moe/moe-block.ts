/**
 * The MoE block: router(x) → routing → dispatch (sort slots by expert) → experts (one GEMM per projection per
 * expert group) → combine (gate-weighted scatter-add), plus optional shared experts (Qwen2-MoE's sigmoid-gated one,
 * DeepSeek's always-on ones).
 */
import type { Checkpoint } from '../io/checkpoint.js';
import type { MoeSpec } from '../models/spec.js';
import type { Weight } from '../tensor/weight.js';
import type { FfnModule, FfnResult } from '../nn/ffn-module.js';
import { linear } from '../backend/cpu/linear.js';
import { sigmoid } from '../backend/cpu/activations.js';
import { loadGatedFfn } from '../nn/dense-ffn.js';
import { makeRouter } from './routers/index.js';
import type { Router } from './routers/router.js';
import { dispatch } from './dispatch.js';
import { gatedFfn, runExperts, type ExpertWeights } from './experts.js';
import { loadExperts } from './expert-loader.js';

export class MoeBlock implements FfnModule {
  readonly router: Router;
  readonly experts: ExpertWeights[];
  private routerW: Weight;
  private routerB?: Weight;
  private shared?: ExpertWeights;
  private sharedGate?: Weight;

  constructor(readonly spec: MoeSpec, readonly D: number, ck: Checkpoint, keepBf16: boolean) {
    const E = spec.numExperts;
    this.routerW = ck.weight(spec.routerWeight, { shape: [E, D] });
    if (spec.routerBias) this.routerB = ck.weight(spec.routerBias, { shape: [E] });
    this.router = makeRouter(spec.router, E, spec.topK, ck);
    this.experts = loadExperts(spec.experts, E, D, ck, keepBf16);
    if (spec.shared) {
      this.shared = loadGatedFfn(spec.shared.ffn, D, ck, keepBf16);
      if (spec.shared.gate) this.sharedGate = ck.weight(`${spec.shared.gate}.weight`, { shape: [1, D] });
    }
  }

  routerLogits(x: Float32Array, T: number): Float32Array {
    return linear(x, T, this.D, this.routerW, this.routerB);
  }

  forward(x: Float32Array, T: number): FfnResult {
    const D = this.D;
    const routing = this.router.route(this.routerLogits(x, T), T);
    const out = new Float32Array(T * D);
    const cfg = { act: this.spec.act, actOpts: this.spec.actOpts };
    runExperts(x, D, routing, dispatch(routing), (e) => this.experts[e]!, cfg, out);
    if (this.shared) {
      const s = gatedFfn(x, T, D, this.shared, { act: this.spec.act });
      const g = this.sharedGate ? linear(x, T, D, this.sharedGate) : undefined;
      for (let t = 0; t < T; t++) {
        const scale = g ? sigmoid(g[t]!) : 1;
        for (let c = 0; c < D; c++) out[t * D + c]! += scale * s[t * D + c]!;
      }
    }
    return { out, routing };
  }
}
