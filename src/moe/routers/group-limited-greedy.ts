/**
 * DeepSeek-V2 routing (DeepSeek-AI, "DeepSeek-V2", 2024, arXiv:2405.04434, §2.2 "device-limited routing").
 * p = softmax(logits) over all experts, then either
 *   - `greedy`: the k largest p, or
 *   - `group_limited_greedy`: experts split into nGroup consecutive groups, group score = max p in the group, keep
 *     the topkGroup best groups, zero the others' p, then the k largest.
 * gates = p_chosen (÷ (Σ p_chosen + 1e-20) when `normTopK`) × routed_scaling_factor.
 * transformers v5 computes this in float32 (softmax in f32, masked scores filled with 0.0, topk ties to the lower
 * index), which this mirrors. Note transformers v5's DeepseekV2 never renormalises (the model file passes
 * normTopK: false); the flag is here for checkpoints whose runtime does.
 */
import { softmaxRows, topkIndices } from '../../backend/cpu/softmax.js';
import type { Router, Routing, RouterSpec } from './router.js';
import { constant, type Var } from '../../train/autograd/var.js';
import { gatherElements, reshape } from '../../train/autograd/ops/shape.js';
import { mul, scale } from '../../train/autograd/ops/elementwise.js';
import { softmax } from '../../train/autograd/ops/softmax.js';
import { normalizeRows } from '../../train/model/ops.js';
import { ProjectedTopKRouter, type StandardRouterOptions } from './trainable-base.js';

type Spec = Extract<RouterSpec, { kind: 'group-limited-greedy' }>;

/**
 * Keep the `keep` best of `nGroup` consecutive expert groups of row[offset .. offset + E) (by `groupScore`) and write
 * the row into `out[0..E)` with every expert of a dropped group set to 0.0 (as transformers' masked_fill does).
 */
export function maskGroups(
  row: Float32Array, offset: number, E: number, nGroup: number, keep: number,
  groupScore: (row: Float32Array, from: number, size: number) => number, out: Float32Array,
): void {
  const size = E / nGroup;
  const gs = new Float32Array(nGroup);
  for (let g = 0; g < nGroup; g++) gs[g] = groupScore(row, offset + g * size, size);
  const kept = topkIndices(gs, nGroup, keep);
  const on = new Uint8Array(nGroup);
  for (let j = 0; j < keep; j++) on[kept[j]!] = 1;
  for (let e = 0; e < E; e++) out[e] = on[Math.floor(e / size)] ? row[offset + e]! : 0;
}

export class GroupLimitedGreedyRouter implements Router {
  readonly name = 'group-limited-greedy';
  private readonly nGroup: number;
  private readonly topkGroup: number;

  constructor(readonly numExperts: number, readonly topK: number, readonly spec: Spec) {
    this.nGroup = Math.max(1, spec.nGroup);
    this.topkGroup = Math.max(1, spec.topkGroup);
    if (spec.method === 'group_limited_greedy') {
      if (numExperts % this.nGroup !== 0) throw new Error(`group-limited-greedy: ${numExperts} experts do not split into ${this.nGroup} groups`);
      if (this.topkGroup > this.nGroup) throw new Error(`group-limited-greedy: topk_group ${this.topkGroup} > n_group ${this.nGroup}`);
    }
    if (topK > numExperts) throw new Error(`group-limited-greedy: top-k ${topK} > ${numExperts} experts`);
  }

  route(logits: Float32Array, T: number): Routing {
    const E = this.numExperts;
    const k = this.topK;
    const scores = softmaxRows(Float32Array.from(logits), E);
    const experts = new Int32Array(T * k);
    const gates = new Float32Array(T * k);
    const sel = new Int32Array(k);
    const masked = new Float32Array(E);
    const limited = this.spec.method === 'group_limited_greedy';
    const groupMax = (r: Float32Array, from: number, size: number): number => {
      let m = -Infinity;
      for (let i = 0; i < size; i++) m = Math.max(m, r[from + i]!);
      return m;
    };
    for (let t = 0; t < T; t++) {
      if (limited) {
        maskGroups(scores, t * E, E, this.nGroup, this.topkGroup, groupMax, masked);
        topkIndices(masked, E, k, 0, sel);
      } else {
        topkIndices(scores, E, k, t * E, sel);
      }
      // Gate = the (masked) score the expert was chosen with, as transformers takes topk's values.
      const val = (e: number): number => (limited ? masked[e]! : scores[t * E + e]!);
      let sum = 0;
      for (let j = 0; j < k; j++) sum = Math.fround(sum + val(sel[j]!));
      const denom = Math.fround(sum + 1e-20);
      for (let j = 0; j < k; j++) {
        let g = val(sel[j]!);
        if (this.spec.normTopK) g = Math.fround(g / denom);
        experts[t * k + j] = sel[j]!;
        gates[t * k + j] = Math.fround(g * this.spec.scaling);
      }
    }
    return { T, k, E, logits, scores, experts, gates };
  }
}

/**
 * Trainable DeepSeek-V2 routing: the inference rule's greedy / group-limited choice on the f32 logits; gates = the
 * chosen softmax probabilities (÷ (Σ + 1e-20) when `normTopK`) × routed scaling, differentiable back to the router
 * weight. A chosen expert of a dropped group (possible only when k exceeds the kept groups' experts) was picked with
 * transformers' masked score 0.0: its gate is the constant 0, as masked_fill makes it there.
 */
export class TrainableGroupLimitedGreedyRouter extends ProjectedTopKRouter {
  readonly name = 'group-limited-greedy';

  constructor(o: StandardRouterOptions, readonly spec: Spec) {
    super(o, new GroupLimitedGreedyRouter(o.numExperts, o.topK, spec));
  }

  protected gates(logits: Var, r: Routing, flat: Int32Array): Var {
    const { T, k } = r;
    let g = gatherElements(softmax(logits), flat);
    if (this.spec.method === 'group_limited_greedy' && r.gates.some((v) => v === 0)) {
      const keep = g.isF64 ? new Float64Array(T * k) : new Float32Array(T * k);
      for (let s = 0; s < T * k; s++) keep[s] = r.gates[s] === 0 ? 0 : 1;
      g = mul(g, constant(keep, [T * k]));
    }
    let g2 = reshape(g, [T, k]);
    if (this.spec.normTopK) g2 = normalizeRows(g2, 1e-20);
    if (this.spec.scaling !== 1) g2 = scale(g2, this.spec.scaling);
    return reshape(g2, [T * k]);
  }
}
