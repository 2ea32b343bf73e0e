/**
 * OLMoE `clip_qkv`: transformers' OlmoeAttention clamps q and k *after* their whole-projection RMSNorm, and v after
 * its projection, to [-clip, clip], before RoPE. Checked against an independent float64 reference of the attention
 * block (projections → q/k norm → clamp → RoPE → causal GQA softmax → o_proj), written here from the transformers
 * code, on the CPU ops and on WebGPU (lavapipe), with layer 0 of the OLMoE fixture and a clip value at the 75th
 * percentile of |q|, |k|, |v| (so ~25 % of the entries are clamped; asserted ≥ 10 %). Model level: clip_qkv = 1e9
 * gives bit-identical logits to no clip (and the fixture's within its 1e-4), a small clip changes them.
 *
 * Tolerance: 1e-4 absolute on outputs of magnitude ~1 — f32 against float64 over 64-wide dot products and a
 * 6-position softmax errs by ~1e-6; a missing clamp errs by far more (asserted: ≥ 100 × the tolerance).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, Fixture } from '../helpers/fixtures.js';
import { Checkpoint, type Config } from '../../src/io/checkpoint.js';
import { specFor } from '../../src/models/registry.js';
import { loadModel } from '../../src/models/load.js';
import { GqaAttention } from '../../src/nn/gqa-attention.js';
import { ropeCosSin } from '../../src/nn/rope.js';
import type { DeviceOps } from '../../src/backend/device-ops.js';
import { CpuOps } from '../../src/backend/cpu/cpu-ops.js';
import { WebGpuOps } from '../../src/backend/webgpu/webgpu-ops.js';
import type { GqaAttentionSpec } from '../../src/models/spec.js';

const TOL = 1e-4;
const S = 6;
const olmoeConfig = (): Config => JSON.parse(readFileSync(join(FIXTURES, 'olmoe', 'config.json'), 'utf8')) as Config;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32; };
}

interface Weights64 { q: Float64Array; k: Float64Array; v: Float64Array; o: Float64Array; qn: Float64Array; kn: Float64Array }

function weights64(ck: Checkpoint, prefix: string): Weights64 {
  const w = (n: string): Float64Array => Float64Array.from(ck.weight(`${prefix}.${n}`).data as Float32Array);
  return { q: w('q_proj.weight'), k: w('k_proj.weight'), v: w('v_proj.weight'), o: w('o_proj.weight'), qn: w('q_norm.weight'), kn: w('k_norm.weight') };
}

/** y[S, N] = x[S, K] · W[N, K]ᵀ in float64. */
function matmulT(x: Float64Array, W: Float64Array, K: number, N: number): Float64Array {
  const y = new Float64Array(S * N);
  for (let t = 0; t < S; t++) for (let n = 0; n < N; n++) {
    let acc = 0;
    for (let i = 0; i < K; i++) acc += x[t * K + i]! * W[n * K + i]!;
    y[t * N + n] = acc;
  }
  return y;
}

function rmsNorm64(x: Float64Array, w: Float64Array, N: number, eps: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let t = 0; t < S; t++) {
    let ss = 0;
    for (let i = 0; i < N; i++) ss += x[t * N + i]! ** 2;
    const r = 1 / Math.sqrt(ss / N + eps);
    for (let i = 0; i < N; i++) y[t * N + i] = x[t * N + i]! * r * w[i]!;
  }
  return y;
}

/** The attention block as transformers' OlmoeAttention computes it, float64; `clip` null = no clamp. */
function reference(x: Float64Array, w: Weights64, spec: GqaAttentionSpec, D: number, clip: number | null): { out: Float64Array; qkv: Float64Array[] } {
  const { numHeads: H, numKvHeads: KVH, headDim: hd } = spec;
  const q = rmsNorm64(matmulT(x, w.q, D, H * hd), w.qn, H * hd, spec.qkNormEps);
  const k = rmsNorm64(matmulT(x, w.k, D, KVH * hd), w.kn, KVH * hd, spec.qkNormEps);
  const v = matmulT(x, w.v, D, KVH * hd);
  const qkv = [q, k, v].map((a) => a.slice());
  if (clip !== null) for (const a of [q, k, v]) for (let i = 0; i < a.length; i++) a[i] = Math.min(clip, Math.max(-clip, a[i]!));
  // RoPE, default type, rotate_half layout: inv_freq[i] = theta^(-2i/hd).
  const half = hd / 2;
  const rot = (a: Float64Array, heads: number): void => {
    for (let t = 0; t < S; t++) for (let h = 0; h < heads; h++) for (let i = 0; i < half; i++) {
      const ang = t * spec.rope.theta ** (-(2 * i) / hd);
      const o = (t * heads + h) * hd;
      const a1 = a[o + i]!, a2 = a[o + i + half]!;
      a[o + i] = a1 * Math.cos(ang) - a2 * Math.sin(ang);
      a[o + i + half] = a2 * Math.cos(ang) + a1 * Math.sin(ang);
    }
  };
  rot(q, H); rot(k, KVH);
  const att = new Float64Array(S * H * hd);
  const group = H / KVH;
  for (let t = 0; t < S; t++) for (let h = 0; h < H; h++) {
    const kvh = Math.floor(h / group);
    const s = new Float64Array(t + 1);
    let m = -Infinity;
    for (let u = 0; u <= t; u++) {
      let dot = 0;
      for (let i = 0; i < hd; i++) dot += q[(t * H + h) * hd + i]! * k[(u * KVH + kvh) * hd + i]!;
      s[u] = dot * spec.scale;
      m = Math.max(m, s[u]!);
    }
    let z = 0;
    for (let u = 0; u <= t; u++) { s[u] = Math.exp(s[u]! - m); z += s[u]!; }
    for (let u = 0; u <= t; u++) for (let i = 0; i < hd; i++) att[(t * H + h) * hd + i]! += (s[u]! / z) * v[(u * KVH + kvh) * hd + i]!;
  }
  return { out: matmulT(att, w.o, H * hd, D), qkv };
}

async function runModule<H, W>(ops: DeviceOps<H, W, unknown>, spec: GqaAttentionSpec, D: number, ck: Checkpoint, x: Float32Array): Promise<Float32Array> {
  const attn = new GqaAttention(ops, spec, D, ck, 256, true);
  const cache = ops.newCache([attn.cacheWidths], 1);
  const positions = Array.from({ length: S }, (_, i) => i);
  const cs = ops.upload(ropeCosSin(attn.rope, positions), [S, attn.rope.invFreq.length, 2]);
  const xh = ops.upload(x, [S, D]);
  const out = attn.forward(xh, S, 0, cache.layers[0]![0]!, cs);
  const r = await ops.read(out, S * D);
  ops.release(out, xh, cs);
  cache.release();
  return r;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('OLMoE clip_qkv: attention block against a float64 reference', () => {
  const ck = new Checkpoint(join(FIXTURES, 'olmoe'));
  const D = olmoeConfig()['hidden_size'] as number;
  const base = specFor(olmoeConfig(), new Set(ck.names())).layers[0]!.attention as GqaAttentionSpec;
  const w = weights64(ck, base.prefix);
  const r = rng(7);
  const x = Float32Array.from({ length: S * D }, () => (r() * 2 - 1) * 2);
  const x64 = Float64Array.from(x);
  // The clip: the 75th percentile of |q|, |k|, |v| of the unclamped block.
  const all = reference(x64, w, base, D, null).qkv.flatMap((a) => Array.from(a, Math.abs)).sort((a, b) => a - b);
  const clip = all[Math.floor(all.length * 0.75)]!;
  const spec: GqaAttentionSpec = { ...base, clipQkv: clip };
  const ref = reference(x64, w, spec, D, clip).out;
  const unclamped = reference(x64, w, base, D, null).out;
  after(() => ck.close());

  it('the clip value clamps ≥ 10 % of q/k/v and moves the output far beyond the tolerance', () => {
    const clamped = all.filter((a) => a > clip).length / all.length;
    assert.ok(clamped >= 0.1, `clamped fraction ${clamped}`);
    assert.ok(maxAbsDiff(ref, unclamped) > 100 * TOL, `a missing clamp would differ by only ${maxAbsDiff(ref, unclamped)}`);
  });

  it('CPU ops', async () => {
    const out = await runModule(new CpuOps(), spec, D, ck, x);
    const err = maxAbsDiff(out, ref);
    assert.ok(err < TOL, `max |cpu − f64| = ${err}`);
  });

  it('WebGPU (fused-projection backend; OLMoE keeps the unfused path)', async () => {
    const ops = await WebGpuOps.create();
    try {
      const out = await runModule(ops, spec, D, ck, x);
      const err = maxAbsDiff(out, ref);
      assert.ok(err < TOL, `max |webgpu − f64| = ${err}`);
    } finally {
      ops.ctx.destroy();
    }
  });

  it('WebGPU: clamping the stacked projection (no q/k norm) equals clamping q, k and v', async () => {
    // The fused qkv path of a spec without q/k norm: compare it with the CPU (three projections) on the same spec.
    const plain: GqaAttentionSpec = { ...spec, qkNorm: 'none' };
    const cpu = await runModule(new CpuOps(), plain, D, ck, x);
    const cpuNoClip = await runModule(new CpuOps(), { ...plain, clipQkv: null }, D, ck, x);
    assert.ok(maxAbsDiff(cpu, cpuNoClip) > 100 * TOL, 'the clip must matter for this check to mean anything');
    const ops = await WebGpuOps.create();
    try {
      assert.ok(ops.fusesProjections);
      const gpu = await runModule(ops, plain, D, ck, x);
      assert.ok(maxAbsDiff(gpu, cpu) < TOL, `max |webgpu − cpu| = ${maxAbsDiff(gpu, cpu)}`);
    } finally {
      ops.ctx.destroy();
    }
  });
});

describe('OLMoE clip_qkv: whole model', () => {
  let tmp = '';
  const fx = new Fixture('olmoe');
  const withClip = (clip: number): string => {
    const d = join(tmp, `clip-${clip}`);
    mkdirSync(d);
    copyFileSync(join(FIXTURES, 'olmoe', 'model.safetensors'), join(d, 'model.safetensors'));
    writeFileSync(join(d, 'config.json'), JSON.stringify({ ...olmoeConfig(), clip_qkv: clip }));
    return d;
  };
  before(() => { tmp = mkdtempSync(join(tmpdir(), 'sy-clip-')); });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('a clip no value reaches gives the fixture logits exactly; a small one changes them', () => {
    const ids = fx.ints('input_ids');
    const B = fx.shape('input_ids')[0]!;
    const plain = loadModel(join(FIXTURES, 'olmoe')).model.forward(ids, B).logits;
    const huge = loadModel(withClip(1e9)).model.forward(ids, B).logits;
    assert.deepEqual(huge, plain);
    assert.ok(maxAbsDiff(huge, fx.f32('logits')) < 1e-4);
    const small = loadModel(withClip(0.5)).model.forward(ids, B).logits;
    assert.ok(maxAbsDiff(small, fx.f32('logits')) > 1e-2, 'clip_qkv 0.5 must change the logits');
  });
});
