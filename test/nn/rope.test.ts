/**
 * RoPE tables and rotation: default inverse frequencies vs the closed form θ^(−2i/d); YaRN vs values derived by
 * hand here from the YaRN formula (transformers v5 `_compute_yarn_parameters`); longrope short/long switching;
 * the half-split and interleaved layouts give the same q·k once the pairs are laid out consistently.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ropeSpecFromConfig, ropeTable, rope, type RopeSpec } from '../../src/nn/rope.js';

const close = (a: number, b: number, rel: number, what: string): void =>
  assert.ok(Math.abs(a - b) <= rel * Math.max(Math.abs(b), 1e-30), `${what}: ${a} vs ${b}`);

describe('rope tables', () => {
  it('default: invFreq[i] = θ^(−2i/d), no scaling', () => {
    // transformers computes the exponent 2i/d in float32 too, hence ~1e-6 rather than 1 ulp when d is not a power of 2
    for (const [theta, d] of [[10000, 16], [1e6, 64], [150000, 96]] as const) {
      const t = ropeTable({ type: 'default', theta, dim: d, interleaved: false }, 4096);
      assert.equal(t.invFreq.length, d / 2);
      assert.equal(t.attentionScale, 1);
      for (let i = 0; i < d / 2; i++) close(t.invFreq[i]!, theta ** (-(2 * i) / d), 1e-6, `θ=${theta} d=${d} i=${i}`);
    }
  });

  it('YaRN, truncate=false (GPT-OSS parameters, head dim 16), derived by hand', () => {
    // d = 16, θ = 150000, factor s = 32, L_orig = 4096, β_fast = 32, β_slow = 1.
    // correction dim r(β) = d · ln(L_orig / (2π β)) / (2 ln θ):
    //   low  = 16 · ln(4096 / (64π)) / (2 ln 150000) = 16 · 3.0141532 / 23.8367811 ≈ 2.0231948
    //   high = 16 · ln(4096 / (2π))  / (2 ln 150000) = 16 · 6.4798891 / 23.8367811 ≈ 4.3495061
    // ramp(i) = clamp((i − low) / (high − low), 0, 1): i ≤ 2 → 0, i = 3 → 0.419894, i = 4 → 0.849760, i ≥ 5 → 1
    // invFreq[i] = ramp · θ^(−2i/d) / s + (1 − ramp) · θ^(−2i/d); cos/sin scale = 0.1 · ln 32 + 1 ≈ 1.346574.
    const d = 16, theta = 150000, s = 32, L = 4096;
    const low = (d * Math.log(L / (2 * Math.PI * 32))) / (2 * Math.log(theta));
    const high = (d * Math.log(L / (2 * Math.PI * 1))) / (2 * Math.log(theta));
    close(low, 2.0231948, 1e-6, 'low');
    close(high, 4.3495061, 1e-6, 'high');
    const ramp = (i: number): number => Math.min(1, Math.max(0, (i - low) / (high - low)));
    close(ramp(3), 0.419894, 1e-5, 'ramp(3)');
    close(ramp(4), 0.849760, 1e-5, 'ramp(4)');
    const spec: RopeSpec = { type: 'yarn', theta, dim: d, interleaved: false, factor: s, originalMaxPositions: L, betaFast: 32, betaSlow: 1, truncate: false };
    const t = ropeTable(spec, 131072);
    close(t.attentionScale, 0.1 * Math.log(32) + 1, 1e-12, 'attention scale');
    close(t.attentionScale, 1.346574, 1e-6, 'attention scale (value)');
    for (let i = 0; i < d / 2; i++) {
      const base = theta ** (-(2 * i) / d);
      close(t.invFreq[i]!, ramp(i) * (base / s) + (1 - ramp(i)) * base, 1e-6, `invFreq[${i}]`);
    }
    // the fast dims (i ≤ 2) keep the original frequency, the slow ones (i ≥ 5) are fully interpolated
    close(t.invFreq[0]!, 1, 1e-7, 'i=0 unscaled');
    close(t.invFreq[7]!, theta ** (-14 / 16) / 32, 1e-6, 'i=7 interpolated');
  });

  it('YaRN, truncate=true: the ramp ends are floored/ceiled to integers (low 2, high 5)', () => {
    const d = 16, theta = 150000, s = 32;
    const t = ropeTable({ type: 'yarn', theta, dim: d, interleaved: false, factor: s, originalMaxPositions: 4096 }, 131072);
    const ramp = (i: number): number => Math.min(1, Math.max(0, (i - 2) / 3));
    for (let i = 0; i < d / 2; i++) {
      const base = theta ** (-(2 * i) / d);
      close(t.invFreq[i]!, ramp(i) * (base / s) + (1 - ramp(i)) * base, 1e-6, `invFreq[${i}]`);
    }
  });

  it('YaRN: explicit attention_factor wins; mscale/mscale_all_dim ratio otherwise (DeepSeek)', () => {
    const base: RopeSpec = { type: 'yarn', theta: 10000, dim: 8, interleaved: false, factor: 40, originalMaxPositions: 4096 };
    assert.equal(ropeTable({ ...base, attentionFactor: 0.75 }, 163840).attentionScale, 0.75);
    const m = (x: number): number => 0.1 * x * Math.log(40) + 1;
    close(ropeTable({ ...base, mscale: 0.707, mscaleAllDim: 0.707 }, 163840).attentionScale, 1, 1e-12, 'equal mscales');
    close(ropeTable({ ...base, mscale: 1, mscaleAllDim: 0.5 }, 163840).attentionScale, m(1) / m(0.5), 1e-12, 'ratio');
  });

  it('ropeSpecFromConfig reads a GPT-OSS rope_parameters block', () => {
    const spec = ropeSpecFromConfig({
      max_position_embeddings: 131072,
      rope_parameters: { rope_type: 'yarn', rope_theta: 150000, factor: 32, beta_fast: 32, beta_slow: 1, truncate: false, original_max_position_embeddings: 4096 },
    }, 64);
    assert.equal(spec.type, 'yarn');
    assert.equal(spec.theta, 150000);
    assert.equal(spec.truncate, false);
    assert.equal(spec.originalMaxPositions, 4096);
    assert.throws(() => ropeSpecFromConfig({ rope_parameters: { rope_type: 'dynamic', factor: 2 } }, 64), /unsupported rope_type/);
  });

  it('longrope: short factors up to original_max_position_embeddings, long ones beyond, per call', () => {
    const d = 8, theta = 10000, orig = 16, maxPos = 64;
    const short = [1, 1.5, 2, 3], long = [2, 4, 8, 16];
    const spec = ropeSpecFromConfig({
      max_position_embeddings: maxPos,
      rope_scaling: { type: 'longrope', short_factor: short, long_factor: long, original_max_position_embeddings: orig },
      rope_theta: theta,
    }, d);
    const t = ropeTable(spec, maxPos);
    const scale = Math.sqrt(1 + Math.log(maxPos / orig) / Math.log(orig));
    close(t.attentionScale, scale, 1e-12, 'short scale');
    for (let i = 0; i < d / 2; i++) {
      close(t.invFreq[i]!, 1 / (short[i]! * theta ** ((2 * i) / d)), 1e-6, `short ${i}`);
      close(t.long!.invFreq[i]!, 1 / (long[i]! * theta ** ((2 * i) / d)), 1e-6, `long ${i}`);
    }
    // x = (1, 0) in every pair: after rotation, pair i of the head holds scale·(cos θ_i p, sin θ_i p).
    const rot = (pos: number[]): Float32Array => {
      const x = new Float32Array(pos.length * d);
      for (let t2 = 0; t2 < pos.length; t2++) for (let i = 0; i < d / 2; i++) x[t2 * d + i] = 1;
      rope(t, x, pos.length, 1, d, pos);
      return x;
    };
    const a = rot([15]); // max position + 1 = 16 = orig → short
    const b = rot([10, 16]); // max + 1 = 17 > orig → long, for every token of the call
    for (let i = 0; i < d / 2; i++) {
      close(a[i]!, scale * Math.cos(15 / (short[i]! * theta ** ((2 * i) / d))), 1e-5, `short cos ${i}`);
      close(b[i]!, scale * Math.cos(10 / (long[i]! * theta ** ((2 * i) / d))), 1e-5, `long cos ${i}`);
    }
  });
});

describe('rope rotation layouts', () => {
  const d = 16, H = 2;
  const table = (interleaved: boolean) => ropeTable({ type: 'yarn', theta: 150000, dim: d, interleaved, factor: 32, originalMaxPositions: 4096, truncate: false }, 131072);
  let s = 12345;
  const r = (): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  /** half-layout index of each interleaved slot: slot 2i ← i, slot 2i+1 ← i + d/2 */
  const toInterleaved = (x: Float32Array): Float32Array => {
    const y = new Float32Array(x.length);
    for (let b = 0; b < x.length; b += d) for (let i = 0; i < d / 2; i++) { y[b + 2 * i] = x[b + i]!; y[b + 2 * i + 1] = x[b + i + d / 2]!; }
    return y;
  };
  const dots = (q: Float32Array, k: Float32Array): number[] =>
    Array.from({ length: H }, (_, h) => { let z = 0; for (let j = 0; j < d; j++) z += q[h * d + j]! * k[h * d + j]!; return z; });

  it('interleaved and half layouts give equal q·k for consistently laid-out pairs', () => {
    for (const [pq, pk] of [[5, 2], [100, 37], [3000, 2999]] as const) {
      const q = Float32Array.from({ length: H * d }, r);
      const k = Float32Array.from({ length: H * d }, r);
      const qh = q.slice(), kh = k.slice();
      rope(table(false), qh, 1, H, d, [pq]);
      rope(table(false), kh, 1, H, d, [pk]);
      const qi = toInterleaved(q), ki = toInterleaved(k);
      rope(table(true), qi, 1, H, d, [pq]);
      rope(table(true), ki, 1, H, d, [pk]);
      const a = dots(qh, kh), b = dots(qi, ki);
      for (let h = 0; h < H; h++) close(b[h]!, a[h]!, 1e-5, `q·k at (${pq}, ${pk}) head ${h}`);
      // and the rotated vectors themselves are the same permutation of each other
      const qhi = toInterleaved(qh);
      for (let j = 0; j < H * d; j++) assert.ok(Math.abs(qhi[j]! - qi[j]!) < 1e-6);
    }
  });

  it('q·k depends only on the position difference (both layouts)', () => {
    for (const interleaved of [false, true]) {
      const q = Float32Array.from({ length: H * d }, r);
      const k = Float32Array.from({ length: H * d }, r);
      const at = (pq: number, pk: number): number[] => {
        const a = q.slice(), b = k.slice();
        rope(table(interleaved), a, 1, H, d, [pq]);
        rope(table(interleaved), b, 1, H, d, [pk]);
        return dots(a, b);
      };
      const x = at(7, 3), y = at(20, 16);
      for (let h = 0; h < H; h++) close(y[h]!, x[h]!, 1e-4, `interleaved=${interleaved} head ${h}`);
    }
  });
});
