/**
 * The MoE block on any device backend (src/backend/device-ops.ts): router linear → fused scoring + top-k
 * (`ops.route`) → all routed experts in grouped kernels (`ops.moe`) → shared experts (Qwen2-MoE's sigmoid-gated one,
 * DeepSeek's always-on ones). The standard fixed-k routers only; the research (zoo) routers and expert offloading
 * live in the CPU MoeBlock (moe-block.ts).
 */
import type { WeightSource } from '../io/weight-source.js';
import type { MoeSpec } from '../models/spec.js';
import type { ActivationSpec, DeviceOps, DeviceRouterSpec } from '../backend/device-ops.js';
import { isDeviceRouterSpec } from '../backend/device-ops.js';
import type { FfnModule, FfnResult } from '../nn/ffn-module.js';
import { DenseFfn } from '../nn/dense-ffn.js';
import { loadExperts } from './expert-loader.js';
import { makeRouter } from './routers/index.js';
import { SigmoidGroupTopKRouter } from './routers/sigmoid-group-topk.js';
import { UserError } from '../util/errors.js';

export class DeviceMoeBlock<H, W, X> implements FfnModule<H> {
  private readonly router: DeviceRouterSpec;
  private readonly routerW: W;
  private readonly routerB?: W;
  /** DeepSeek-V3's e_score_correction_bias. */
  private readonly bias?: W;
  private readonly experts: X;
  private readonly act: ActivationSpec;
  private readonly shared?: DenseFfn<H, W>;
  private readonly sharedGate?: W;

  constructor(private readonly ops: DeviceOps<H, W, X>, readonly spec: MoeSpec, private readonly D: number, ck: WeightSource, keepBf16: boolean) {
    const m = spec;
    const E = m.numExperts;
    if (!isDeviceRouterSpec(m.router)) throw new UserError(`router ${m.router.kind} runs on the CPU only`);
    this.router = m.router;
    // Router weights stay f32 whatever the backend's matrix storage: routing decisions must not move with it.
    this.routerW = ops.weight(ck.weight(m.routerWeight, { shape: [E, D] }), true);
    if (m.routerBias) this.routerB = ops.vector(ck.weight(m.routerBias, { shape: [E] }).data as Float32Array, m.routerBias);
    const cpuRouter = makeRouter(m.router, E, m.topK, ck);
    if (cpuRouter instanceof SigmoidGroupTopKRouter) this.bias = ops.vector(cpuRouter.bias, 'e_score_correction_bias');
    const ew = loadExperts(m.experts, E, D, ck, keepBf16);
    const first = ew[0]!;
    this.experts = ops.experts({
      E, D, F: first.gate.shape[0]!,
      gate: ew.map((e) => e.gate), up: ew.map((e) => e.up), down: ew.map((e) => e.down),
      gateBias: first.gateBias ? ew.map((e) => e.gateBias!) : undefined,
      upBias: first.upBias ? ew.map((e) => e.upBias!) : undefined,
      downBias: first.downBias ? ew.map((e) => e.downBias!) : undefined,
    }, m.routerWeight.replace(/\.weight$/, '.experts'));
    this.act = { kind: m.act, alpha: m.actOpts?.alpha, limit: m.actOpts?.limit };
    if (m.shared) {
      this.shared = new DenseFfn(ops, m.shared.ffn, D, ck, keepBf16);
      if (m.shared.gate) this.sharedGate = ops.weight(ck.weight(`${m.shared.gate}.weight`, { shape: [1, D] }), true);
    }
  }

  forward(y: H, T: number): FfnResult<H> {
    const o = this.ops;
    const k = this.spec.topK;
    const logits = o.linear(y, T, this.D, this.routerW, this.routerB);
    const r = o.route(logits, T, this.spec.numExperts, k, this.router, this.bias);
    o.release(logits);
    const out = o.moe(y, T, r.experts, r.gates, k, this.experts, this.act);
    o.release(r.gates);
    if (this.shared) {
      const s = this.shared.run(y, T);
      if (this.sharedGate) {
        const g = o.linear(y, T, this.D, this.sharedGate);
        o.addSigmoidGated(out, s, g, T, this.D);
        o.release(g);
      } else {
        o.addScaled(out, s, T * this.D, 1);
      }
      o.release(s);
    }
    return { out, experts: r.experts };
  }
}
