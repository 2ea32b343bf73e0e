/**
 * Multi-head Latent Attention (DeepSeek-V2, arXiv:2405.04434; DeepSeek-V3, arXiv:2412.19437).
 *
 * Per token x [D]:
 *   q      = q_proj(x)                                  (V2-Lite style, no q LoRA)
 *          | q_b_proj(RMSNorm(q_a_proj(x)))              (q LoRA: V2, V3)
 *            → per head [qk_nope | qk_rope]
 *   c, kpe = split(kv_a_proj_with_mqa(x), [kv_lora_rank | qk_rope])
 *   kv     = kv_b_proj(RMSNorm(c)) → per head [k_nope | v]
 *   RoPE on q's rope part (per head) and on kpe (one rope key shared by every head)
 *   k_h    = [k_nope_h | kpe]
 *   out    = o_proj(softmax(q·kᵀ · scale) · v)
 *
 * The rope layout follows the checkpoint: `spec.rope.interleaved` rotates pairs (2i, 2i+1) (V2's complex form and
 * V3 with `rope_interleave`, whose de-interleave-then-rotate_half only permutes the rotated dims identically in q and k,
 * leaving every q·k unchanged), otherwise the Llama half layout. `spec.scale` is qk_head_dim^-0.5, times YaRN mscale²
 * where the model file says so.
 *
 * KV cache: this module caches the decompressed per-head keys [H · (qk_nope + qk_rope)] and values [H · v_head_dim]
 * of every token (the simplest exact scheme; no re-projection of the latent at each step). It costs more memory than
 * caching the kv_lora_rank + qk_rope latent, but keeps decoding a plain attention over the cache.
 */
import type { WeightSource } from '../io/weight-source.js';
import type { MlaAttentionSpec } from '../models/spec.js';
import type { Weight } from '../tensor/weight.js';
import type { LayerKVCache } from '../infer/kv-cache.js';
import type { AttentionModule } from './attention-module.js';
import { linear } from '../backend/cpu/linear.js';
import { rmsNorm } from '../backend/cpu/norm.js';
import { attention } from '../backend/cpu/attention.js';
import { ropeTable, rope, type RopeTable } from './rope.js';
import { loadMlaWeights } from './attention-weights.js';

export class MlaAttention implements AttentionModule {
  readonly cacheWidths: { k: number; v: number };
  private q?: Weight;
  private qa?: Weight; private qaBias?: Weight; private qaNorm?: Float32Array; private qb?: Weight;
  private kva: Weight; private kvaBias?: Weight; private kvaNorm: Float32Array; private kvb: Weight;
  private o: Weight; private oBias?: Weight;
  private rope: RopeTable;
  private readonly qkDim: number;

  constructor(private spec: MlaAttentionSpec, private D: number, ck: WeightSource, maxPositions: number, keepBf16: boolean) {
    const w = loadMlaWeights(spec, D, ck, keepBf16);
    this.q = w.q; this.qa = w.qa; this.qaBias = w.qaBias; this.qaNorm = w.qaNorm; this.qb = w.qb;
    this.kva = w.kva; this.kvaBias = w.kvaBias; this.kvaNorm = w.kvaNorm; this.kvb = w.kvb;
    this.o = w.o; this.oBias = w.oBias;
    this.qkDim = spec.qkNopeDim + spec.qkRopeDim;
    this.rope = ropeTable(spec.rope, maxPositions);
    this.cacheWidths = { k: spec.numHeads * this.qkDim, v: spec.numHeads * spec.vHeadDim };
  }

  forward(x: Float32Array, S: number, start: number, cache: LayerKVCache): Float32Array {
    const { numHeads: H, kvLoraRank: R, qkNopeDim: dn, qkRopeDim: dr, vHeadDim: dv, normEps } = this.spec;
    const D = this.D;
    const qk = this.qkDim;

    // Queries [S, H, qk].
    let q: Float32Array;
    if (this.q) {
      q = linear(x, S, D, this.q);
    } else {
      const r = this.qa!.shape[0]!;
      const qa = rmsNorm(linear(x, S, D, this.qa!, this.qaBias), this.qaNorm!, normEps);
      q = linear(qa, S, r, this.qb!);
    }

    // Compressed KV [S, R + dr] → latent [S, R] (normalised) and the shared rope key [S, dr].
    const ckv = linear(x, S, D, this.kva, this.kvaBias);
    const latent = new Float32Array(S * R);
    const kpe = new Float32Array(S * dr);
    for (let s = 0; s < S; s++) {
      latent.set(ckv.subarray(s * (R + dr), s * (R + dr) + R), s * R);
      kpe.set(ckv.subarray(s * (R + dr) + R, (s + 1) * (R + dr)), s * dr);
    }
    const kv = linear(rmsNorm(latent, this.kvaNorm, normEps), S, R, this.kvb); // [S, H, dn + dv]

    const pos = Array.from({ length: S }, (_, i) => start + i);
    rope(this.rope, q, S, H, qk, pos, dn);
    rope(this.rope, kpe, S, 1, dr, pos);

    // Full per-head keys [S, H, dn + dr] and values [S, H, dv].
    const k = new Float32Array(S * H * qk);
    const v = new Float32Array(S * H * dv);
    for (let s = 0; s < S; s++) {
      const pe = kpe.subarray(s * dr, (s + 1) * dr);
      for (let h = 0; h < H; h++) {
        const src = (s * H + h) * (dn + dv);
        const kb = (s * H + h) * qk;
        k.set(kv.subarray(src, src + dn), kb);
        k.set(pe, kb + dn);
        v.set(kv.subarray(src + dn, src + dn + dv), (s * H + h) * dv);
      }
    }
    cache.append(k, v, S);
    const a = attention(q, S, H, qk, cache.k, cache.v, cache.length, H, dv, start, { scale: this.spec.scale });
    return linear(a, S, H * dv, this.o, this.oBias);
  }
}
