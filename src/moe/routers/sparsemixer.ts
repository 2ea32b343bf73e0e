/**
 * SparseMixer top-2 routing, inference (eval) branch — the router of Phi-3.5-MoE (transformers `sparsemixer` in
 * modeling_phimoe.py). SparseMixer comes from Liu et al. 2023, "Sparse Backpropagation for MoE Training"
 * (arXiv:2310.00811); in training it samples experts (Gumbel) and uses a Heun-style midpoint gradient estimate. At
 * inference it is deterministic:
 *
 *   1st expert: e1 = argmax(s). Mask every expert j with (s[e1] − s[j]) / max(|s[j]|, s[e1]) > 2·jitterEps (set its
 *               logit to −∞); gate1 = softmax(masked s)[e1].
 *   2nd expert: s' = s with s'[e1] = −∞; e2 = argmax(s'). Mask every j with (s'[e2] − s[j]) / max(|s[j]|, s'[e2])
 *               > 2·jitterEps (on top of e1 already at −∞); gate2 = softmax(masked s')[e2].
 *
 * So each gate is the softmax of the chosen logit against only the logits within a relative distance 2·jitterEps of
 * it (config `router_jitter_noise`, 0.01 in Phi-3.5-MoE): gates are *not* normalised to sum to 1, and with
 * jitterEps = 0 both gates are exactly 1 (barring ties). Only top-2 is defined, as in transformers.
 */
import { UserError } from '../../util/errors.js';
import type { Router, Routing } from './router.js';

export class SparseMixerRouter implements Router {
  readonly name = 'sparsemixer';
  constructor(readonly numExperts: number, readonly topK: number, readonly jitterEps: number) {
    if (topK !== 2) throw new UserError(`sparsemixer routing is defined for top-2 only (num_experts_per_tok = ${topK})`);
    if (numExperts < 2) throw new UserError(`sparsemixer routing needs at least 2 experts, got ${numExperts}`);
  }

  route(logits: Float32Array, T: number): Routing {
    const E = this.numExperts;
    const experts = new Int32Array(T * 2);
    const gates = new Float32Array(T * 2);
    for (let t = 0; t < T; t++) {
      const b = t * E;
      // First expert: argmax over all logits (first index wins ties, as torch.max does on CPU).
      let e1 = 0;
      for (let e = 1; e < E; e++) if (logits[b + e]! > logits[b + e1]!) e1 = e;
      gates[t * 2] = this.maskedSoftmaxAt(logits, b, e1, -1);
      // Second expert: argmax with the first one masked out.
      let e2 = e1 === 0 ? 1 : 0;
      for (let e = 0; e < E; e++) if (e !== e1 && logits[b + e]! > logits[b + e2]!) e2 = e;
      gates[t * 2 + 1] = this.maskedSoftmaxAt(logits, b, e2, e1);
      experts[t * 2] = e1;
      experts[t * 2 + 1] = e2;
    }
    return { T, k: 2, E, logits, scores: logits, experts, gates };
  }

  /**
   * softmax over the row's logits at `sel`, where logits further than 2·jitterEps (relative) below s[sel] — and the
   * `excluded` expert, if any — are −∞. Computed in float64 from the f32 logits.
   */
  private maskedSoftmaxAt(s: Float32Array, b: number, sel: number, excluded: number): number {
    const E = this.numExperts;
    const thr = s[b + sel]!;
    const twoEps = 2 * this.jitterEps;
    let sum = 0;
    for (let e = 0; e < E; e++) {
      if (e === excluded) continue;
      const v = s[b + e]!;
      const factor = Math.max(Math.abs(v), thr);
      // Same comparison as transformers: masked when (thr − v) / factor > 2·eps (NaN compares false: kept).
      if ((thr - v) / factor > twoEps) continue;
      sum += Math.exp(v - thr);
    }
    return 1 / sum;
  }
}
