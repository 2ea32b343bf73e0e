/**
 * The trainable MoE block: router(x) → slots (token, expert, gate) → slots grouped by expert → per expert:
 * gatherRows(x) → gated FFN → (all groups concatenated) × slot gates (scaleRows) → scatterAddRows back to [T, D]
 * (the sum over a token's slots). Expert ids ≥ numExperts are the router's zero-computation experts
 * (`router.extraExperts`): 'zero' contributes nothing, 'copy' contributes x, 'constant' contributes
 * `router.constantExpert(x_rows, id)`, each × its gate. Plus optional shared experts (a dense FFN, × sigmoid(x·w)
 * when gated, as in Qwen2-MoE).
 */
import type { MoeSpec } from '../../models/spec.js';
import { constant, type Var } from '../autograd/var.js';
import { linear } from '../autograd/ops/linear.js';
import { add, sigmoid } from '../autograd/ops/elementwise.js';
import { concatRows, gatherElements, gatherRows, reshape, scaleRows, scatterAddRows } from '../autograd/ops/shape.js';
import { makeTrainableRouter } from '../../moe/routers/trainable-factory.js';
import type { StandardRouterOptions } from '../../moe/routers/trainable-base.js';
import type { RouterContext, SlotRouting, TrainableRouter } from '../../moe/routers/trainable.js';
import type { ParamStore } from './params.js';
import { RoutedExperts } from './experts.js';
import { TrainableDenseFfn, ffnWidth, type FfnAct } from './ffn.js';

export interface MoeWidths {
  /** Routed expert width (when not loading it from a checkpoint). */
  expert?: number;
  /** Shared expert width. */
  shared?: number;
}

/** Slots sorted by expert id (stable), as offsets into `order` per id. */
function groupSlots(experts: Int32Array, ids: number): { offsets: Int32Array; order: Int32Array } {
  const counts = new Int32Array(ids);
  for (let s = 0; s < experts.length; s++) {
    const e = experts[s]!;
    if (!(e >= 0 && e < ids)) throw new Error(`router chose expert ${e} of ${ids}`);
    counts[e]!++;
  }
  const offsets = new Int32Array(ids + 1);
  for (let e = 0; e < ids; e++) offsets[e + 1] = offsets[e]! + counts[e]!;
  const fill = offsets.slice(0, ids);
  const order = new Int32Array(experts.length);
  for (let s = 0; s < experts.length; s++) order[fill[experts[s]!]!++] = s;
  return { offsets, order };
}

export class TrainableMoeBlock {
  readonly router: TrainableRouter;
  readonly experts: RoutedExperts;
  readonly shared?: TrainableDenseFfn;
  readonly sharedGate?: Var;
  private readonly act: FfnAct;

  /** `routerInitStd`: std of a fresh router weight; `biasUpdateRate`: see StandardRouterOptions. */
  constructor(readonly spec: MoeSpec, readonly layer: number, readonly D: number, store: ParamStore,
    widths: MoeWidths, routerInitStd: number, biasUpdateRate?: number) {
    const E = spec.numExperts;
    const prefix = spec.routerWeight.replace(/\.(gate|router)(\.layer)?\.weight$/, '');
    const o: StandardRouterOptions = {
      layer, D, numExperts: E, topK: spec.topK, prefix, rng: store.uniform, precision: store.precision,
      weightName: spec.routerWeight, biasName: spec.routerBias, initStd: routerInitStd, biasUpdateRate,
    };
    this.router = makeTrainableRouter(spec.router, o);
    for (const p of this.router.params()) store.adopt(p);
    this.experts = new RoutedExperts(spec.experts, E, D, widths.expert, store);
    if (spec.shared) {
      const F = ffnWidth(store, `${spec.shared.ffn.gate}.weight`, widths.shared, 'shared expert');
      this.shared = new TrainableDenseFfn(spec.shared.ffn, D, F, store);
      if (spec.shared.gate) this.sharedGate = store.param(`${spec.shared.gate}.weight`, [1, D], 'matrix');
    }
    this.act = { act: spec.act, actOpts: spec.actOpts };
  }

  /** x [T, D] → { out [T, D], routing }. */
  forward(x: Var, ctx: RouterContext): { out: Var; routing: SlotRouting } {
    const D = this.D;
    const T = x.size / D;
    const E = this.spec.numExperts;
    const extra = this.router.extraExperts;
    const r = this.router.route(x, ctx);
    if (r.tokens.length !== r.experts.length || r.gates.size !== r.experts.length) {
      throw new Error(`router ${this.router.name}: ${r.tokens.length} tokens, ${r.experts.length} experts and ${r.gates.size} gates per slot`);
    }
    const { offsets, order } = groupSlots(r.experts, E + extra.length);
    const parts: Var[] = [];
    const slots: number[] = [];
    for (let e = 0; e < E + extra.length; e++) {
      const n = offsets[e + 1]! - offsets[e]!;
      if (n === 0) continue;
      const kind = e < E ? 'ffn' : extra[e - E]!;
      if (kind === 'zero') continue;
      const mine = order.subarray(offsets[e]!, offsets[e + 1]!);
      const toks = new Int32Array(n);
      for (let i = 0; i < n; i++) toks[i] = r.tokens[mine[i]!]!;
      const xe = gatherRows(x, toks);
      let y: Var;
      if (e < E) y = this.experts.run(e, xe, this.act);
      else if (kind === 'copy') y = xe;
      else if (kind === 'constant') {
        if (!this.router.constantExpert) throw new Error(`router ${this.router.name} declares constant experts but has no constantExpert()`);
        y = this.router.constantExpert(xe, e);
      } else throw new Error(`router ${this.router.name}: extra expert ${e} has kind ${kind}`);
      parts.push(y);
      for (const s of mine) slots.push(s);
    }
    let out: Var | undefined;
    if (parts.length) {
      const idx = Int32Array.from(slots);
      const toks = new Int32Array(idx.length);
      for (let i = 0; i < idx.length; i++) toks[i] = r.tokens[idx[i]!]!;
      const y = parts.length === 1 ? parts[0]! : concatRows(parts);
      out = scatterAddRows(scaleRows(y, gatherElements(r.gates, idx)), toks, T);
    }
    if (this.shared) {
      let s = this.shared.forward(x);
      if (this.sharedGate) s = scaleRows(s, sigmoid(reshape(linear(x, this.sharedGate), [T])));
      out = out ? add(out, s) : s;
    }
    out ??= constant(x.isF64 ? new Float64Array(T * D) : new Float32Array(T * D), [T, D]);
    return { out, routing: r };
  }
}
