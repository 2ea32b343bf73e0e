/**
 * DeepSeek-V3 `noaux_tc` routing (DeepSeek-AI, "DeepSeek-V3 Technical Report", 2024, arXiv:2412.19437, §2.1.2),
 * with auxiliary-loss-free load balancing (Wang et al., "Auxiliary-Loss-Free Load Balancing Strategy for
 * Mixture-of-Experts", 2024, arXiv:2408.15664): a per-expert bias steers *which* experts are chosen but not their
 * weights.
 *   s      = sigmoid(logits)
 *   choice = s + e_score_correction_bias
 *   group score = sum of the 2 largest `choice` in each of nGroup consecutive groups; keep the topkGroup best groups,
 *   set `choice` of the others to 0.0 (transformers' masked_fill value, so a masked expert can still beat a kept one
 *   whose biased score is negative — reproduced here), take the k largest.
 *   gates  = s_chosen (unbiased) ÷ (Σ s_chosen + 1e-20) when `normTopK`, then × routed_scaling_factor.
 * Computed in float32 like transformers v5 (which casts the router to float32).
 */
import { topkIndices } from '../../backend/cpu/softmax.js';
import { maskGroups } from './group-limited-greedy.js';
import type { Router, Routing, RouterSpec } from './router.js';
import type { Var } from '../../train/autograd/var.js';
import { gatherElements, reshape } from '../../train/autograd/ops/shape.js';
import { scale, sigmoid } from '../../train/autograd/ops/elementwise.js';
import { normalizeRows } from '../../train/model/ops.js';
import type { SlotRouting } from './trainable.js';
import { ProjectedTopKRouter, type StandardRouterOptions } from './trainable-base.js';

type Spec = Extract<RouterSpec, { kind: 'sigmoid-group-topk' }>;

/** Sum of the two largest values of row[from .. from + size) (the one value when size is 1), in float32. */
function top2Sum(row: Float32Array, from: number, size: number): number {
  let a = -Infinity;
  let b = -Infinity;
  for (let i = 0; i < size; i++) {
    const v = row[from + i]!;
    if (v > a) { b = a; a = v; } else if (v > b) b = v;
  }
  return size === 1 ? a : Math.fround(a + b);
}

export class SigmoidGroupTopKRouter implements Router {
  readonly name = 'sigmoid-group-topk';
  private readonly nGroup: number;
  private readonly topkGroup: number;

  constructor(readonly numExperts: number, readonly topK: number, readonly spec: Spec, readonly bias: Float32Array) {
    this.nGroup = Math.max(1, spec.nGroup);
    this.topkGroup = Math.max(1, spec.topkGroup);
    if (numExperts % this.nGroup !== 0) throw new Error(`sigmoid-group-topk: ${numExperts} experts do not split into ${this.nGroup} groups`);
    if (this.topkGroup > this.nGroup) throw new Error(`sigmoid-group-topk: topk_group ${this.topkGroup} > n_group ${this.nGroup}`);
    if (topK > numExperts) throw new Error(`sigmoid-group-topk: top-k ${topK} > ${numExperts} experts`);
    if (bias.length !== numExperts) throw new Error(`sigmoid-group-topk: correction bias has ${bias.length} entries, expected ${numExperts}`);
  }

  route(logits: Float32Array, T: number): Routing {
    const E = this.numExperts;
    const k = this.topK;
    const scores = new Float32Array(T * E);
    for (let i = 0; i < scores.length; i++) scores[i] = 1 / (1 + Math.exp(-logits[i]!));
    const choice = new Float32Array(E);
    const masked = new Float32Array(E);
    const experts = new Int32Array(T * k);
    const gates = new Float32Array(T * k);
    const sel = new Int32Array(k);
    for (let t = 0; t < T; t++) {
      for (let e = 0; e < E; e++) choice[e] = scores[t * E + e]! + this.bias[e]!;
      maskGroups(choice, 0, E, this.nGroup, this.topkGroup, top2Sum, masked);
      topkIndices(masked, E, k, 0, sel);
      let sum = 0;
      for (let j = 0; j < k; j++) sum = Math.fround(sum + scores[t * E + sel[j]!]!);
      const denom = Math.fround(sum + 1e-20);
      for (let j = 0; j < k; j++) {
        let g = scores[t * E + sel[j]!]!;
        if (this.spec.normTopK) g = Math.fround(g / denom);
        experts[t * k + j] = sel[j]!;
        gates[t * k + j] = Math.fround(g * this.spec.scaling);
      }
    }
    return { T, k, E, logits, scores, experts, gates };
  }
}

/**
 * Trainable DeepSeek-V3 routing. Selection is the inference rule's (sigmoid + correction bias, group-limited top-k)
 * on the f32 logits; the gates are the chosen *unbiased* sigmoid scores, renormalised (÷ (Σ + 1e-20)) when
 * `normTopK`, × routed scaling — differentiable back to the router weight, as in transformers. The correction bias
 * gets no gradient: it is state (`state()` / `loadState`, under its checkpoint name `spec.biasName`), moved by
 * `afterStep` with the auxiliary-loss-free rule of Wang et al. 2024 (arXiv:2408.15664, DeepSeek-V3 §2.1.2):
 * b_e += γ · sign(mean load − load_e) over the step's routed tokens.
 */
export class TrainableSigmoidGroupTopKRouter extends ProjectedTopKRouter {
  readonly name = 'sigmoid-group-topk';
  /** e_score_correction_bias [E] (selection only; shared with the inference rule). */
  readonly correction: Float32Array;
  readonly biasUpdateRate: number;

  constructor(o: StandardRouterOptions, readonly spec: Spec) {
    const correction = new Float32Array(o.numExperts);
    super(o, new SigmoidGroupTopKRouter(o.numExperts, o.topK, spec, correction));
    this.correction = correction;
    this.biasUpdateRate = o.biasUpdateRate ?? 0.001;
  }

  protected gates(logits: Var, r: Routing, flat: Int32Array): Var {
    let g = reshape(gatherElements(sigmoid(logits), flat), [r.T, r.k]);
    if (this.spec.normTopK) g = normalizeRows(g, 1e-20);
    if (this.spec.scaling !== 1) g = scale(g, this.spec.scaling);
    return reshape(g, [r.T * r.k]);
  }

  afterStep(rs: readonly SlotRouting[]): void {
    const E = this.numExperts;
    if (!this.biasUpdateRate) return;
    const load = new Float64Array(E);
    let n = 0;
    for (const r of rs) for (const e of r.experts) if (e < E) { load[e]!++; n++; }
    if (!n) return;
    const mean = n / E;
    for (let e = 0; e < E; e++) this.correction[e]! += this.biasUpdateRate * Math.sign(mean - load[e]!);
  }

  state(): Record<string, number[]> {
    return { [this.spec.biasName]: Array.from(this.correction) };
  }

  loadState(s: Record<string, number[]>): void {
    const b = s[this.spec.biasName];
    if (!b) return;
    if (b.length !== this.numExperts) throw new Error(`${this.spec.biasName}: ${b.length} values for ${this.numExperts} experts`);
    this.correction.set(b);
  }
}
