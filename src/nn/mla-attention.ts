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
 * Written once over the op interface (src/backend/device-ops.ts) for every backend.
 */
import type { WeightSource } from '../io/weight-source.js';
import type { MlaAttentionSpec } from '../models/spec.js';
import type { DeviceLayerCache, DeviceOps } from '../backend/device-ops.js';
import type { AttentionModule } from './attention-module.js';
import { ropeTable, type RopeTable } from './rope.js';
import { loadMlaWeights } from './attention-weights.js';

export class MlaAttention<H, W> implements AttentionModule<H> {
  readonly cacheWidths: { k: number; v: number };
  readonly rope: RopeTable;
  private q?: W;
  private qa?: W; private qaBias?: W; private qaNorm?: W; private qb?: W;
  private kva: W; private kvaBias?: W; private kvaNorm: W; private kvb: W;
  private o: W; private oBias?: W;
  private readonly qkDim: number;

  constructor(private readonly ops: DeviceOps<H, W, unknown>, private readonly spec: MlaAttentionSpec, private readonly D: number,
    ck: WeightSource, maxPositions: number, keepBf16: boolean) {
    const w = loadMlaWeights(spec, D, ck, keepBf16);
    const p = spec.prefix;
    const bias = (b: typeof w.qaBias): W | undefined => (b ? ops.vector(b.data as Float32Array, b.name) : undefined);
    this.q = w.q ? ops.weight(w.q) : undefined;
    this.qa = w.qa ? ops.weight(w.qa) : undefined;
    this.qaBias = bias(w.qaBias);
    this.qaNorm = w.qaNorm ? ops.vector(w.qaNorm, `${p}.q_a_layernorm`) : undefined;
    this.qb = w.qb ? ops.weight(w.qb) : undefined;
    this.kva = ops.weight(w.kva); this.kvaBias = bias(w.kvaBias);
    this.kvaNorm = ops.vector(w.kvaNorm, `${p}.kv_a_layernorm`);
    this.kvb = ops.weight(w.kvb);
    this.o = ops.weight(w.o); this.oBias = bias(w.oBias);
    this.qkDim = spec.qkNopeDim + spec.qkRopeDim;
    this.rope = ropeTable(spec.rope, maxPositions);
    this.cacheWidths = { k: spec.numHeads * this.qkDim, v: spec.numHeads * spec.vHeadDim };
  }

  forward(x: H, S: number, start: number, cache: DeviceLayerCache<H>, cosSin: H): H {
    const o = this.ops;
    const { numHeads: Hh, kvLoraRank: R, qkNopeDim: dn, qkRopeDim: dr, vHeadDim: dv, normEps } = this.spec;
    const D = this.D;
    const qk = this.qkDim;

    // Queries [S, H, qk].
    let q: H;
    if (this.q) {
      q = o.linear(x, S, D, this.q);
    } else {
      const r = this.spec.qLoraRank!;
      const qa = o.linear(x, S, D, this.qa!, this.qaBias);
      const qan = o.rmsNorm(qa, S, r, this.qaNorm!, normEps);
      q = o.linear(qan, S, r, this.qb!);
      o.release(qa, qan);
    }

    // Compressed KV [S, R + dr] → latent [S, R] (normalised) and the shared rope key [S, dr].
    const ckv = o.linear(x, S, D, this.kva, this.kvaBias);
    const latent = o.empty([S, R]);
    const kpe = o.empty([S, dr]);
    o.copyCols(ckv, R + dr, 0, latent, R, 0, R, S);
    o.copyCols(ckv, R + dr, R, kpe, dr, 0, dr, S);
    o.release(ckv);
    const ln = o.rmsNorm(latent, S, R, this.kvaNorm, normEps);
    const kv = o.linear(ln, S, R, this.kvb); // [S, H, dn + dv]
    o.release(latent, ln);

    const half = this.rope.invFreq.length;
    o.rope(q, S, Hh, qk, cosSin, half, this.rope.interleaved, dn);
    o.rope(kpe, S, 1, dr, cosSin, half, this.rope.interleaved, 0);

    // Full per-head keys [S, H, dn + dr] (the one rope key broadcast over heads) and values [S, H, dv].
    const k = o.empty([S * Hh, qk]);
    const v = o.empty([S * Hh, dv]);
    o.copyCols(kv, dn + dv, 0, k, qk, 0, dn, S * Hh);
    o.copyCols(kpe, dr, 0, k, qk, dn, dr, S * Hh, Hh);
    o.copyCols(kv, dn + dv, dn, v, dv, 0, dv, S * Hh);
    o.release(kv, kpe);
    cache.append(k, v, S);
    o.release(k, v);
    const att = o.attention(q, S, Hh, qk, cache.k, cache.v, cache.length, Hh, dv, start, { scale: this.spec.scale });
    o.release(q);
    const out = o.linear(att, S, Hh * dv, this.o, this.oBias);
    o.release(att);
    return out;
  }
}
