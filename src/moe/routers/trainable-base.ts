/**
 * Shared pieces of the standard trainable routers (softmax-topk, topk-softmax, sigmoid-group-topk,
 * group-limited-greedy): the router projection's parameters, the f32 logits the inference rule selects on, and the
 * slot arrays of a fixed top-k routing.
 */
import { param, type Var } from '../../train/autograd/var.js';
import { linear } from '../../train/autograd/ops/linear.js';
import { normalSampler } from '../../train/model/rng.js';
import type { Router, Routing } from './router.js';
import type { ExpertKind, RouterContext, SlotRouting, TrainableRouter, TrainableRouterOptions } from './trainable.js';

/** What the standard routers accept besides the contract's options (all optional). */
export interface StandardRouterOptions extends TrainableRouterOptions {
  /** Router weight [E, D] tensor name (default `${prefix}.gate.weight`; the model passes MoeSpec.routerWeight). */
  weightName?: string;
  /** Router bias [E] tensor name (MoeSpec.routerBias), when the projection has a bias. */
  biasName?: string;
  /** Standard deviation of a fresh router weight (default 0.02). */
  initStd?: number;
  /** sigmoid-group-topk: auxiliary-loss-free bias update speed γ per `afterStep` (default 0.001; 0 = frozen). */
  biasUpdateRate?: number;
}

export interface RouterProjection {
  weight: Var;
  bias?: Var;
}

/** The router's weight [E, D] (N(0, initStd²) from the options' rng) and optional zero bias [E]. */
export function routerProjection(o: StandardRouterOptions): RouterProjection {
  const E = o.numExperts;
  const D = o.D;
  const f64 = o.precision === 'f64';
  const w = f64 ? new Float64Array(E * D) : new Float32Array(E * D);
  const normal = normalSampler(o.rng);
  const std = o.initStd ?? 0.02;
  for (let i = 0; i < w.length; i++) w[i] = normal() * std;
  const weight = param(w, [E, D], o.weightName ?? `${o.prefix}.gate.weight`);
  const bias = o.biasName ? param(f64 ? new Float64Array(E) : new Float32Array(E), [E], o.biasName) : undefined;
  return { weight, bias };
}

/** The logits as float32, which the inference rules select on (float64 logits are rounded; f32 ones are shared). */
export function selectionLogits(logits: Var): Float32Array {
  return logits.data instanceof Float32Array ? logits.data : Float32Array.from(logits.data);
}

/**
 * Slots of a fixed top-k routing, slot s = t·k + j: its token t and its flat index t·E + e into a [T, E] score
 * table (for gathering the chosen scores).
 */
export function topkSlots(r: Routing): { tokens: Int32Array; flat: Int32Array } {
  const n = r.T * r.k;
  const tokens = new Int32Array(n);
  const flat = new Int32Array(n);
  for (let s = 0; s < n; s++) {
    const t = Math.floor(s / r.k);
    tokens[s] = t;
    flat[s] = t * r.E + r.experts[s]!;
  }
  return { tokens, flat };
}

/**
 * A standard trainable router: logits = x·Wᵀ (+ b); the experts are the inference rule's fixed top-k choice on the
 * float32 logits (so training and inference route identically); subclasses say how the gates follow from the logits
 * (differentiably, back to W, b and x).
 */
export abstract class ProjectedTopKRouter implements TrainableRouter {
  abstract readonly name: string;
  readonly extraExperts: readonly ExpertKind[] = [];
  readonly numExperts: number;
  readonly topK: number;
  readonly weight: Var;
  readonly bias?: Var;

  protected constructor(o: StandardRouterOptions, protected readonly rule: Router) {
    if (o.topK > o.numExperts) throw new Error(`${rule.name}: top-k ${o.topK} > ${o.numExperts} experts`);
    this.numExperts = o.numExperts;
    this.topK = o.topK;
    ({ weight: this.weight, bias: this.bias } = routerProjection(o));
  }

  params(): Var[] {
    return this.bias ? [this.weight, this.bias] : [this.weight];
  }

  route(x: Var, _ctx: RouterContext): SlotRouting {
    const logits = linear(x, this.weight, this.bias);
    const T = logits.size / this.numExperts;
    const r = this.rule.route(selectionLogits(logits), T);
    const { tokens, flat } = topkSlots(r);
    return { T, tokens, experts: r.experts, gates: this.gates(logits, r, flat), logits, aux: [] };
  }

  /** Gates [T·k] of the chosen slots; `flat[s]` indexes slot s's (token, expert) in the [T, E] logits. */
  protected abstract gates(logits: Var, r: Routing, flat: Int32Array): Var;
}
