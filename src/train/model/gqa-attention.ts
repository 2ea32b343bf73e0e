/**
 * Trainable grouped-query attention, the math of nn/gqa-attention.ts over whole sequences: q/k/v projections
 * (optional biases), optional q/k RMSNorm (per head, or over the whole projection), RoPE, causal softmax attention
 * (optional sliding window and per-head sinks), output projection (optional bias).
 */
import type { GqaAttentionSpec } from '../../models/spec.js';
import type { Var } from '../autograd/var.js';
import { linear } from '../autograd/ops/linear.js';
import { rmsNorm } from '../autograd/ops/norm.js';
import { rope } from '../autograd/ops/rope.js';
import { attention } from '../autograd/ops/attention.js';
import { ropeTable, type RopeTable } from '../../nn/rope.js';
import type { ParamStore } from './params.js';
import { UserError } from '../../util/errors.js';

export class TrainableGqaAttention {
  readonly q: Var; readonly k: Var; readonly v: Var; readonly o: Var;
  readonly qb?: Var; readonly kb?: Var; readonly vb?: Var; readonly ob?: Var;
  readonly qNorm?: Var; readonly kNorm?: Var;
  readonly sinks?: Var;
  private readonly table: RopeTable;

  constructor(readonly spec: GqaAttentionSpec, D: number, store: ParamStore, maxPositions: number) {
    const { prefix: p, numHeads: H, numKvHeads: KVH, headDim: hd } = spec;
    // The clamp has zero gradient outside the limit; training through it is not implemented (inference only).
    if (spec.clipQkv != null) throw new UserError('config.json: clip_qkv is not supported for training (inference only); remove it or set it to null');
    this.q = store.param(`${p}.q_proj.weight`, [H * hd, D], 'matrix');
    this.k = store.param(`${p}.k_proj.weight`, [KVH * hd, D], 'matrix');
    this.v = store.param(`${p}.v_proj.weight`, [KVH * hd, D], 'matrix');
    this.o = store.param(`${p}.o_proj.weight`, [D, H * hd], 'matrix');
    if (spec.qkvBias) {
      this.qb = store.param(`${p}.q_proj.bias`, [H * hd], 'zeros');
      this.kb = store.param(`${p}.k_proj.bias`, [KVH * hd], 'zeros');
      this.vb = store.param(`${p}.v_proj.bias`, [KVH * hd], 'zeros');
    }
    if (spec.oBias) this.ob = store.param(`${p}.o_proj.bias`, [D], 'zeros');
    if (spec.qkNorm !== 'none') {
      this.qNorm = store.param(`${p}.q_norm.weight`, [spec.qkNorm === 'head' ? hd : H * hd], 'ones');
      this.kNorm = store.param(`${p}.k_norm.weight`, [spec.qkNorm === 'head' ? hd : KVH * hd], 'ones');
    }
    if (spec.sinks) this.sinks = store.param(`${p}.sinks`, [H], 'zeros');
    this.table = ropeTable(spec.rope, maxPositions);
  }

  /** x [B·S, D] (B sequences of S tokens at positions 0..S−1) → [B·S, D]. */
  forward(x: Var, B: number, S: number, positions: Int32Array): Var {
    const { numHeads: H, numKvHeads: KVH, headDim: hd } = this.spec;
    let q = linear(x, this.q, this.qb);
    let k = linear(x, this.k, this.kb);
    const v = linear(x, this.v, this.vb);
    if (this.qNorm && this.kNorm) {
      q = rmsNorm(q, this.qNorm, this.spec.qkNormEps);
      k = rmsNorm(k, this.kNorm, this.spec.qkNormEps);
    }
    q = rope(q, this.table, H, hd, positions);
    k = rope(k, this.table, KVH, hd, positions);
    const a = attention(q, k, v, { B, S, H, KVH, dq: hd, dv: hd, scale: this.spec.scale, window: this.spec.slidingWindow }, this.sinks);
    return linear(a, this.o, this.ob);
  }
}
