/**
 * The MoE block: router(x) → routing → dispatch (sort slots by expert) → experts (one GEMM per projection per
 * expert group) → combine (gate-weighted scatter-add), plus optional shared experts (Qwen2-MoE's sigmoid-gated one,
 * DeepSeek's always-on ones).
 *
 * Zoo routers (trainable research routers, src/moe/routers/zoo.ts — models trained by Switchyard): the router is the
 * TrainableRouter itself, its parameters (and state such as an aux-free bias) loaded from the checkpoint by name and
 * run under noGrad in float32. It returns slots (variable per token); FFN slots run grouped per expert as above,
 * zero-computation slots are handled here: 'zero' adds nothing, 'copy' adds gate·x, 'constant' adds
 * gate·router.constantExpert(x). Cross-layer router state travels in the per-forward FfnContext.carry.
 */
import type { WeightSource } from '../io/weight-source.js';
import type { MoeSpec } from '../models/spec.js';
import type { Weight } from '../tensor/weight.js';
import type { FfnContext, FfnModule, FfnResult } from '../nn/ffn-module.js';
import { linear } from '../backend/cpu/linear.js';
import { sigmoid } from '../backend/cpu/activations.js';
import { loadGatedFfn } from '../nn/dense-ffn.js';
import { makeRouter } from './routers/index.js';
import type { Router } from './routers/router.js';
import { dispatch } from './dispatch.js';
import { gatedFfn, runExpertSlots, runExperts, type ExpertWeights } from './experts.js';
import { loadExperts } from './expert-loader.js';
import { isZooRouterSpec, makeZooRouter } from './routers/zoo.js';
import type { TrainableRouter } from './routers/trainable.js';
import { constant, noGrad } from '../train/autograd/var.js';
import { weightToF32 } from '../tensor/weight.js';
import { UserError } from '../util/errors.js';
import type { ExpertCache } from '../infer/offload/expert-cache.js';

export class MoeBlock implements FfnModule {
  /** The fixed-k inference router (standard kinds). For a zoo-routed block it only names the router and throws. */
  readonly router: Router;
  /** The zoo router (trainable research router) run in inference mode. */
  readonly slotRouter?: TrainableRouter;
  readonly experts: ExpertWeights[];
  private routerW?: Weight;
  private routerB?: Weight;
  private shared?: ExpertWeights;
  private sharedGate?: Weight;

  /**
   * With `offload`, routed experts are not loaded here: the expert cache reads them on demand (src/infer/offload/),
   * and `experts` stays empty.
   */
  constructor(readonly spec: MoeSpec, readonly D: number, ck: WeightSource, keepBf16: boolean, readonly layer = 0, private readonly offload?: ExpertCache) {
    const E = spec.numExperts;
    if (isZooRouterSpec(spec.router)) {
      const zoo = loadZooRouter(spec, D, ck, layer);
      this.slotRouter = zoo;
      this.router = {
        name: zoo.name, numExperts: E, topK: spec.topK,
        route: () => { throw new Error(`router ${zoo.name} routes into slots: use MoeBlock.forward(...).slots`); },
      };
    } else {
      this.routerW = ck.weight(spec.routerWeight, { shape: [E, D] });
      if (spec.routerBias) this.routerB = ck.weight(spec.routerBias, { shape: [E] });
      this.router = makeRouter(spec.router, E, spec.topK, ck);
    }
    if (offload) {
      // Pre-gating for a prefetching cache: this layer's router applied to an earlier layer's hidden state.
      const predict = this.routerW ? (x: Float32Array, T: number): number[] => this.predictExperts(x, T) : undefined;
      offload.addLayer(layer, spec.experts, E, D, keepBf16, predict);
      this.experts = [];
    } else {
      this.experts = loadExperts(spec.experts, E, D, ck, keepBf16);
    }
    if (spec.shared) {
      this.shared = loadGatedFfn(spec.shared.ffn, D, ck, keepBf16);
      if (spec.shared.gate) this.sharedGate = ck.weight(`${spec.shared.gate}.weight`, { shape: [1, D] });
    }
  }

  routerLogits(x: Float32Array, T: number): Float32Array {
    if (!this.routerW) throw new Error('routerLogits: this block is routed by a zoo router (see forward().slots.logits)');
    return linear(x, T, this.D, this.routerW, this.routerB);
  }

  /** The distinct experts this block's router would choose for x[T, D], ascending (for offload prefetch). */
  predictExperts(x: Float32Array, T: number): number[] {
    const r = this.router.route(this.routerLogits(x, T), T);
    const seen = new Uint8Array(this.spec.numExperts);
    for (let i = 0; i < r.experts.length; i++) seen[r.experts[i]!] = 1;
    const out: number[] = [];
    seen.forEach((v, e) => { if (v) out.push(e); });
    return out;
  }

  private expert(e: number): ExpertWeights {
    return this.offload ? this.offload.get(this.layer, e) : this.experts[e]!;
  }

  forward(x: Float32Array, T: number, ctx?: FfnContext): FfnResult {
    const D = this.D;
    const out = new Float32Array(T * D);
    const cfg = { act: this.spec.act, actOpts: this.spec.actOpts };
    const res: FfnResult = { out };
    if (this.slotRouter) {
      res.slots = this.runSlots(this.slotRouter, x, T, ctx ?? { carry: new Map() }, out);
    } else {
      const routing = this.router.route(this.routerLogits(x, T), T);
      // Prefetch for the next MoE layer before this layer's expert GEMMs, so its reads overlap them.
      this.offload?.prefetchNext(this.layer, x, T, new Set(routing.experts));
      runExperts(x, D, routing, dispatch(routing), (e) => this.expert(e), cfg, out);
      res.routing = routing;
    }
    if (this.shared) {
      const s = gatedFfn(x, T, D, this.shared, { act: this.spec.act });
      const g = this.sharedGate ? linear(x, T, D, this.sharedGate) : undefined;
      for (let t = 0; t < T; t++) {
        const scale = g ? sigmoid(g[t]!) : 1;
        for (let c = 0; c < D; c++) out[t * D + c]! += scale * s[t * D + c]!;
      }
    }
    return res;
  }

  private runSlots(router: TrainableRouter, x: Float32Array, T: number, ctx: FfnContext, out: Float32Array): NonNullable<FfnResult['slots']> {
    const D = this.D;
    const E = this.spec.numExperts;
    const r = noGrad(() => router.route(constant(x, [T, D]), { layer: this.layer, carry: ctx.carry, training: false }));
    const gates = r.gates.data instanceof Float32Array ? r.gates.data : Float32Array.from(r.gates.data);
    const slots = { tokens: r.tokens, experts: r.experts, gates };
    this.offload?.prefetchNext(this.layer, x, T, new Set(Array.from(r.experts).filter((e) => e < E)));
    runExpertSlots(x, D, slots, E, (e) => this.expert(e), { act: this.spec.act, actOpts: this.spec.actOpts }, out);
    const extra = router.extraExperts;
    const constRows = new Map<number, number[]>();
    for (let s = 0; s < r.experts.length; s++) {
      const e = r.experts[s]!;
      if (e < E) continue;
      const kind = extra[e - E];
      const t = r.tokens[s]!;
      const g = gates[s]!;
      if (kind === 'zero') continue;
      if (kind === 'copy') {
        for (let c = 0; c < D; c++) out[t * D + c]! += g * x[t * D + c]!;
      } else if (kind === 'constant') {
        let l = constRows.get(e);
        if (!l) constRows.set(e, (l = []));
        l.push(s);
      } else {
        throw new Error(`router ${router.name} chose expert ${e}, which is neither an FFN expert (< ${E}) nor one of its ${extra.length} extra experts`);
      }
    }
    for (const [e, list] of constRows) {
      if (!router.constantExpert) throw new Error(`router ${router.name} declares constant experts but has no constantExpert()`);
      const xs = new Float32Array(list.length * D);
      list.forEach((s, i) => xs.set(x.subarray(r.tokens[s]! * D, r.tokens[s]! * D + D), i * D));
      const y = noGrad(() => router.constantExpert!(constant(xs, [list.length, D]), e)).data;
      list.forEach((s, i) => {
        const t = r.tokens[s]!;
        const g = gates[s]!;
        for (let c = 0; c < D; c++) out[t * D + c]! += g * y[i * D + c]!;
      });
    }
    const logits = r.logits.data instanceof Float32Array ? r.logits.data : Float32Array.from(r.logits.data);
    return { T, numExperts: E, extraExperts: extra, tokens: r.tokens, experts: r.experts, gates, logits };
  }
}

/**
 * A zoo router for inference: built from its spec (f32), then every parameter and any state it declares (state keys
 * are tensor names, e.g. an aux-free `e_score_correction_bias`) read from the checkpoint. The router's tensor-name
 * prefix is the router weight's name without `.gate.weight`.
 */
function loadZooRouter(spec: MoeSpec, D: number, ck: WeightSource, layer: number): TrainableRouter {
  const suffix = '.gate.weight';
  if (!spec.routerWeight.endsWith(suffix)) throw new UserError(`zoo router ${spec.router.kind}: router weight ${spec.routerWeight} must be named <prefix>${suffix}`);
  if (spec.routerBias) throw new UserError(`zoo router ${spec.router.kind}: a router bias (${spec.routerBias}) is not supported`);
  const prefix = spec.routerWeight.slice(0, -suffix.length);
  let router: TrainableRouter;
  try {
    router = makeZooRouter(spec.router, { layer, D, numExperts: spec.numExperts, topK: spec.topK, prefix, rng: () => 0.5, precision: 'f32' });
  } catch (e) {
    throw new UserError(`layer ${layer}: ${e instanceof Error ? e.message : String(e)}`);
  }
  for (const p of router.params()) {
    p.data.set(weightToF32(ck.weight(p.name, { shape: p.shape })));
  }
  if (router.state && router.loadState) {
    const found: Record<string, number[]> = {};
    for (const key of Object.keys(router.state())) if (ck.has(key)) found[key] = Array.from(weightToF32(ck.weight(key)));
    router.loadState(found);
  }
  return router;
}
