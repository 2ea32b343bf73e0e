/** Norms, softmax, top-k and activations against float64 references computed here from the formulas. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmsNorm, layerNorm } from '../../src/backend/cpu/norm.js';
import { softmaxRows, topkIndices } from '../../src/backend/cpu/softmax.js';
import { erf, gelu, gatedActivation } from '../../src/backend/cpu/activations.js';
import { makeRng } from '../../src/infer/sampling.js';

const rng = makeRng(42);
const randn = (n: number, scale = 1): Float32Array => Float32Array.from({ length: n }, () => (rng() * 2 - 1) * scale);
/** float32 rounding of values O(1) computed in float64: relative error ≤ 2⁻²³ per op; 1e-6 covers a few ops. */
const TOL = 1e-6;

function close(a: number, b: number, tol: number, what: string): void {
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
}

describe('norms', () => {
  it('rmsNorm over groups equals x / sqrt(mean x² + eps) * w', () => {
    const G = 16;
    const x = randn(5 * G, 3);
    const w = randn(G);
    const out = rmsNorm(x, w, 1e-6);
    for (let r = 0; r < 5; r++) {
      let ss = 0;
      for (let i = 0; i < G; i++) ss += x[r * G + i]! ** 2;
      const inv = 1 / Math.sqrt(ss / G + 1e-6);
      for (let i = 0; i < G; i++) close(out[r * G + i]!, x[r * G + i]! * inv * w[i]!, TOL, `rms ${r},${i}`);
    }
  });
  it('layerNorm with bias', () => {
    const G = 24;
    const x = randn(3 * G, 5);
    const w = randn(G);
    const b = randn(G);
    const out = layerNorm(x, w, b, 1e-5);
    for (let r = 0; r < 3; r++) {
      const row = Array.from(x.subarray(r * G, r * G + G));
      const mean = row.reduce((a, v) => a + v, 0) / G;
      const v = row.reduce((a, q) => a + (q - mean) ** 2, 0) / G;
      for (let i = 0; i < G; i++) close(out[r * G + i]!, ((row[i]! - mean) / Math.sqrt(v + 1e-5)) * w[i]! + b[i]!, TOL, `ln ${r},${i}`);
    }
  });
  it('rejects a length that does not split into groups', () => {
    assert.throws(() => rmsNorm(new Float32Array(10), new Float32Array(4), 1e-6), /groups of 4/);
  });
});

describe('softmax and top-k', () => {
  it('softmaxRows matches exp(x - max) / sum, incl. large logits', () => {
    const x = randn(4 * 9, 40);
    const ref = Array.from(x);
    softmaxRows(x, 9);
    for (let r = 0; r < 4; r++) {
      const row = ref.slice(r * 9, r * 9 + 9);
      const m = Math.max(...row);
      const z = row.reduce((a, v) => a + Math.exp(v - m), 0);
      for (let i = 0; i < 9; i++) close(x[r * 9 + i]!, Math.exp(row[i]! - m) / z, TOL, `softmax ${r},${i}`);
    }
  });
  it('topkIndices returns the k largest in descending order', () => {
    for (let trial = 0; trial < 50; trial++) {
      const n = 3 + Math.floor(rng() * 60);
      const k = 1 + Math.floor(rng() * Math.min(n, 8));
      const v = randn(n);
      const want = Array.from(v.keys()).sort((a, b) => v[b]! - v[a]!).slice(0, k);
      assert.deepEqual(Array.from(topkIndices(v, n, k)), want);
    }
  });
  it('topkIndices on ties prefers the lower index (torch.topk on distinct values is unaffected)', () => {
    assert.deepEqual(Array.from(topkIndices([1, 3, 3, 0], 4, 2)), [1, 2]);
    assert.deepEqual(Array.from(topkIndices([-Infinity, -Infinity, 5], 3, 3)), [2, 0, 1]);
  });
});

describe('activations', () => {
  it('erf to 1e-7 at known values', () => {
    const known: [number, number][] = [[0, 0], [0.5, 0.5204998778130465], [1, 0.8427007929497149], [2, 0.9953222650189527], [-1.5, -0.9661051464753108], [3.5, 0.9999992569016276]];
    for (const [x, v] of known) assert.ok(Math.abs(erf(x) - v) < 2e-7, `erf(${x}) = ${erf(x)} vs ${v}`);
  });
  it('gelu(x) = x Φ(x)', () => {
    close(gelu(1), 0.8413447460685429, 2e-7, 'gelu(1)');
    close(gelu(-0.5), -0.5 * 0.3085375387259869, 2e-7, 'gelu(-0.5)');
  });
  it('silu-gated and GPT-OSS clamped SwiGLU', () => {
    const g = randn(64, 12);
    const u = randn(64, 12);
    const s = gatedActivation('silu', Float32Array.from(g), u);
    const o = gatedActivation('gpt_oss', Float32Array.from(g), u, { alpha: 1.702, limit: 7 });
    for (let i = 0; i < 64; i++) {
      close(s[i]!, (g[i]! / (1 + Math.exp(-g[i]!))) * u[i]!, TOL, `silu ${i}`);
      const gc = Math.min(g[i]!, 7);
      const uc = Math.min(Math.max(u[i]!, -7), 7);
      close(o[i]!, (uc + 1) * gc / (1 + Math.exp(-1.702 * gc)), TOL, `gpt_oss ${i}`);
    }
  });
});
