/**
 * Multi-head Latent Attention on the DeepSeek-V2 (q_proj) and DeepSeek-V3 (q LoRA, interleaved RoPE) fixtures'
 * weights: the KV cache must make incremental decoding exact — prefilling S tokens at once, feeding them one at a
 * time, and feeding them in uneven chunks all give the same outputs and the same cache. Also checks the softmax
 * scale's YaRN mscale² rule on a config.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { FIXTURES, maxAbsDiff } from '../helpers/fixtures.js';
import { Checkpoint, readConfig } from '../../src/io/checkpoint.js';
import { MlaAttention } from '../../src/nn/mla-attention.js';
import { CpuOps } from '../../src/backend/cpu/cpu-ops.js';
import { ropeCosSin } from '../../src/nn/rope.js';
import type { Weight } from '../../src/tensor/weight.js';
import { LayerKVCache } from '../../src/infer/kv-cache.js';
import { specFor } from '../../src/models/registry.js';
import { ConfigReader } from '../../src/models/common.js';
import { mlaAttention } from '../../src/models/deepseek_v2.js';
import type { MlaAttentionSpec, ModelSpec } from '../../src/models/spec.js';

/** Deterministic pseudo-random activations in [-2, 2). */
function randomInput(n: number, seed: number): Float32Array {
  let x = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; out[i] = (x / 2 ** 32) * 4 - 2; }
  return out;
}

for (const name of ['deepseek_v2', 'deepseek_v3']) {
  describe(`MLA attention on ${name} weights`, () => {
    let ck: Checkpoint;
    let spec: ModelSpec;
    const mods: MlaAttention<Float32Array, Weight>[] = [];
    const ops = new CpuOps();
    /** One forward at positions start … start + S − 1 (the decoder builds the RoPE rows the same way). */
    const fwd = (m: MlaAttention<Float32Array, Weight>, x: Float32Array, S: number, start: number, c: LayerKVCache): Float32Array =>
      m.forward(x, S, start, c, ropeCosSin(m.rope, Array.from({ length: S }, (_, i) => start + i)));

    before(() => {
      const dir = join(FIXTURES, name);
      ck = new Checkpoint(dir);
      spec = specFor(readConfig(dir), new Set(ck.names()));
      for (const l of spec.layers) {
        assert.equal(l.attention.kind, 'mla');
        mods.push(new MlaAttention(ops, l.attention as MlaAttentionSpec, spec.hiddenSize, ck, spec.maxPositions, false));
      }
    });
    after(() => ck.close());

    it('spec: q LoRA only for V3, interleaved rope on qk_rope_head_dim, scale = qk_head_dim^-0.5', () => {
      const a = spec.layers[0]!.attention as MlaAttentionSpec;
      assert.equal(a.qLoraRank, name === 'deepseek_v3' ? 32 : null);
      assert.equal(a.rope.dim, a.qkRopeDim);
      assert.equal(a.rope.interleaved, true);
      assert.equal(a.scale, 1 / Math.sqrt(a.qkNopeDim + a.qkRopeDim));
    });

    it('prefill of S tokens == one token at a time == uneven chunks (outputs and cache)', () => {
      const D = spec.hiddenSize;
      const S = 9;
      mods.forEach((m, l) => {
        const x = randomInput(S * D, 17 + l);
        const c1 = new LayerKVCache(m.cacheWidths.k, m.cacheWidths.v, 4);
        const full = fwd(m, x, S, 0, c1);
        assert.equal(c1.length, S);

        const c2 = new LayerKVCache(m.cacheWidths.k, m.cacheWidths.v, 2);
        const step = new Float32Array(S * D);
        for (let s = 0; s < S; s++) step.set(fwd(m, x.subarray(s * D, (s + 1) * D), 1, s, c2), s * D);
        assert.ok(maxAbsDiff(step, full).max <= 1e-5, `layer ${l}: token-by-token vs prefill ${maxAbsDiff(step, full).max}`);

        const c3 = new LayerKVCache(m.cacheWidths.k, m.cacheWidths.v);
        const chunks = [4, 1, 3, 1];
        const chunked = new Float32Array(S * D);
        let at = 0;
        for (const n of chunks) {
          chunked.set(fwd(m, x.subarray(at * D, (at + n) * D), n, at, c3), at * D);
          at += n;
        }
        assert.ok(maxAbsDiff(chunked, full).max <= 1e-5, `layer ${l}: chunked vs prefill`);

        for (const c of [c2, c3]) {
          assert.equal(c.length, S);
          assert.ok(maxAbsDiff(c.k.subarray(0, S * c.kWidth), c1.k.subarray(0, S * c1.kWidth)).max <= 1e-6);
          assert.ok(maxAbsDiff(c.v.subarray(0, S * c.vWidth), c1.v.subarray(0, S * c1.vWidth)).max <= 1e-6);
        }
      });
    });

    it('is causal: appending later tokens does not change earlier outputs', () => {
      const D = spec.hiddenSize;
      const m = mods[0]!;
      const x = randomInput(6 * D, 5);
      const short = fwd(m, x.subarray(0, 3 * D), 3, 0, new LayerKVCache(m.cacheWidths.k, m.cacheWidths.v));
      const long = fwd(m, x, 6, 0, new LayerKVCache(m.cacheWidths.k, m.cacheWidths.v));
      assert.ok(maxAbsDiff(short, long.subarray(0, 3 * D)).max <= 1e-6);
    });
  });
}

describe('MLA softmax scale', () => {
  const base = {
    num_attention_heads: 4, qk_nope_head_dim: 16, qk_rope_head_dim: 8, v_head_dim: 16, kv_lora_rank: 16, q_lora_rank: null,
  };
  it('default rope: qk_head_dim^-0.5', () => {
    const a = mlaAttention(new ConfigReader({ ...base, rope_parameters: { rope_type: 'default', rope_theta: 10000 } }, 'deepseek_v3'), 0, true);
    assert.equal(a.scale, 1 / Math.sqrt(24));
  });
  it('YaRN with mscale_all_dim: × (0.1 · mscale_all_dim · ln(factor) + 1)²', () => {
    const rp = { rope_type: 'yarn', rope_theta: 10000, factor: 40, mscale: 1, mscale_all_dim: 0.707, original_max_position_embeddings: 4096, beta_fast: 32, beta_slow: 1 };
    const a = mlaAttention(new ConfigReader({ ...base, max_position_embeddings: 163840, rope_parameters: rp }, 'deepseek_v3'), 0, true);
    const m = 0.1 * 0.707 * Math.log(40) + 1;
    assert.ok(Math.abs(a.scale - m * m / Math.sqrt(24)) < 1e-12);
    // legacy `rope_scaling` key (DeepSeek hub configs) gives the same
    const b = mlaAttention(new ConfigReader({ ...base, max_position_embeddings: 163840, rope_scaling: { ...rp, rope_type: undefined, type: 'yarn' } }, 'deepseek_v3'), 0, true);
    assert.equal(b.scale, a.scale);
  });
  it('YaRN without mscale_all_dim: unscaled', () => {
    const rp = { rope_type: 'yarn', rope_theta: 10000, factor: 4, original_max_position_embeddings: 64 };
    const a = mlaAttention(new ConfigReader({ ...base, max_position_embeddings: 256, rope_parameters: rp }, 'deepseek_v3'), 0, true);
    assert.equal(a.scale, 1 / Math.sqrt(24));
  });
});
