/**
 * Trainable Multi-head Latent Attention (DeepSeek-V2/V3), the math of nn/mla-attention.ts over whole sequences:
 *   q      = q_proj(x) | q_b_proj(RMSNorm(q_a_proj(x)))                → per head [qk_nope | qk_rope]
 *   c, kpe = split(kv_a_proj_with_mqa(x), [kv_lora_rank | qk_rope])
 *   kv     = kv_b_proj(RMSNorm(c))                                      → per head [k_nope | v]
 *   RoPE on q's rope part (per head) and on kpe (one key shared by every head); k_h = [k_nope_h | kpe]
 *   out    = o_proj(softmax(q·kᵀ · scale) · v)
 */
import type { MlaAttentionSpec } from '../../models/spec.js';
import type { Var } from '../autograd/var.js';
import { linear } from '../autograd/ops/linear.js';
import { rmsNorm } from '../autograd/ops/norm.js';
import { rope } from '../autograd/ops/rope.js';
import { attention } from '../autograd/ops/attention.js';
import { concatCols, gatherRows, reshape, sliceCols } from '../autograd/ops/shape.js';
import { ropeTable, type RopeTable } from '../../nn/rope.js';
import type { ParamStore } from './params.js';

export class TrainableMlaAttention {
  readonly q?: Var;
  readonly qa?: Var; readonly qaBias?: Var; readonly qaNorm?: Var; readonly qb?: Var;
  readonly kva: Var; readonly kvaBias?: Var; readonly kvaNorm: Var; readonly kvb: Var;
  readonly o: Var; readonly oBias?: Var;
  private readonly table: RopeTable;

  constructor(readonly spec: MlaAttentionSpec, D: number, store: ParamStore, maxPositions: number) {
    const { prefix: p, numHeads: H, qLoraRank, kvLoraRank: R, qkNopeDim: dn, qkRopeDim: dr, vHeadDim: dv } = spec;
    const bias = spec.bias ?? false;
    const qOut = H * (dn + dr);
    if (qLoraRank === null) {
      this.q = store.param(`${p}.q_proj.weight`, [qOut, D], 'matrix');
    } else {
      this.qa = store.param(`${p}.q_a_proj.weight`, [qLoraRank, D], 'matrix');
      if (bias) this.qaBias = store.param(`${p}.q_a_proj.bias`, [qLoraRank], 'zeros');
      this.qaNorm = store.param(`${p}.q_a_layernorm.weight`, [qLoraRank], 'ones');
      this.qb = store.param(`${p}.q_b_proj.weight`, [qOut, qLoraRank], 'matrix');
    }
    this.kva = store.param(`${p}.kv_a_proj_with_mqa.weight`, [R + dr, D], 'matrix');
    if (bias) this.kvaBias = store.param(`${p}.kv_a_proj_with_mqa.bias`, [R + dr], 'zeros');
    this.kvaNorm = store.param(`${p}.kv_a_layernorm.weight`, [R], 'ones');
    this.kvb = store.param(`${p}.kv_b_proj.weight`, [H * (dn + dv), R], 'matrix');
    this.o = store.param(`${p}.o_proj.weight`, [D, H * dv], 'matrix');
    if (bias) this.oBias = store.param(`${p}.o_proj.bias`, [D], 'zeros');
    if (spec.rope.dim !== dr) throw new Error(`MLA ${p}: rope dim ${spec.rope.dim} must equal qk_rope_head_dim ${dr}`);
    this.table = ropeTable(spec.rope, maxPositions);
  }

  /** x [B·S, D] → [B·S, D]. */
  forward(x: Var, B: number, S: number, positions: Int32Array): Var {
    const { numHeads: H, kvLoraRank: R, qkNopeDim: dn, qkRopeDim: dr, vHeadDim: dv, normEps } = this.spec;
    const T = B * S;
    const qk = dn + dr;
    const q0 = this.q ? linear(x, this.q) : linear(rmsNorm(linear(x, this.qa!, this.qaBias), this.qaNorm!, normEps), this.qb!);
    const ckv = linear(x, this.kva, this.kvaBias); // [T, R + dr]
    const latent = sliceCols(ckv, 0, R);
    const kpe = rope(sliceCols(ckv, R, R + dr), this.table, 1, dr, positions); // [T, dr]
    const kv = reshape(linear(rmsNorm(latent, this.kvaNorm, normEps), this.kvb), [T * H, dn + dv]);
    const q = rope(q0, this.table, H, qk, positions, dn); // [T, H·qk]
    // Every head of token t shares the rope key kpe[t].
    const rows = new Int32Array(T * H);
    for (let t = 0; t < T; t++) rows.fill(t, t * H, (t + 1) * H);
    const k = reshape(concatCols([sliceCols(kv, 0, dn), gatherRows(kpe, rows)]), [T, H * qk]);
    const v = reshape(sliceCols(kv, dn, dn + dv), [T, H * dv]);
    const a = attention(q, k, v, { B, S, H, KVH: H, dq: qk, dv, scale: this.spec.scale });
    return linear(a, this.o, this.oBias);
  }
}
