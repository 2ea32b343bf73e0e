/**
 * Inference of switchyard_moe models routed by zoo routers: each MoE layer's output (from a captured forward)
 * against a float64 re-implementation — the zoo router in float64 with the checkpoint's parameters and state, the
 * carry threaded through the layers in order, FFN experts token by token, zero / copy / constant experts, shared
 * experts — and KV-cached decoding against full recomputation for every causal router.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../../../src/models/load.js';
import { makeZooRouter } from '../../../src/moe/routers/zoo.js';
import { constant, noGrad } from '../../../src/train/autograd/var.js';
import { MoeBlock } from '../../../src/moe/moe-block.js';
import type { RouterSpec } from '../../../src/moe/routers/router.js';
import { writeTinySwitchyard } from './checkpoint.js';
import { SPECS, matmulNT } from './helpers.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

const silu = (v: number): number => v / (1 + Math.exp(-v));

function ffnRef(x: ArrayLike<number>, g: Float32Array, u: Float32Array, d: Float32Array, D: number, F: number): Float64Array {
  const a = matmulNT(x, g, 1, D, F);
  const b = matmulNT(x, u, 1, D, F);
  const h = a.map((v, i) => silu(v) * b[i]!);
  return matmulNT(h, d, 1, F, D);
}

interface Case { name: string; router: RouterSpec; layers: number; dense?: number[]; shared?: number; causal: boolean }

const CASES: Case[] = [
  ...Object.entries(SPECS).map(([name, router]) => ({ name, router, layers: 2, causal: name !== 'expert-choice' })),
  // Cross-layer carries through a dense layer in between, plus shared experts.
  { name: 'moe-plus-plus (constant + copy + zero, gating residual over a dense layer, shared experts)', router: { kind: 'moe-plus-plus', zero: 1, copy: 2, constant: 2, gatingResidual: true, normTopK: true }, layers: 3, dense: [1], shared: 1, causal: true },
  { name: 'recurrent (GRU state over a dense layer)', router: { kind: 'recurrent', projDim: 6, hiddenDim: 5, normTopK: false }, layers: 3, dense: [1], causal: true },
  { name: 'balanced-softmax-topk with capacity (dropless at inference)', router: { kind: 'balanced-softmax-topk', normTopK: true, capacityFactor: 0.5 }, layers: 2, causal: true },
];

describe('switchyard_moe inference with zoo routers', () => {
  for (const c of CASES) {
    it(`${c.name}: MoE layer outputs match a float64 reference (1e-4)${c.causal ? '; KV-cached decoding = full recomputation (1e-4)' : ''}`, () => {
      const D = 16, E = 8, F = 12, k = 2;
      const ck = writeTinySwitchyard({ router: c.router, layers: c.layers, denseLayers: c.dense, sharedExperts: c.shared, D, E, F, k, seed: c.name.length });
      dirs.push(ck.dir);
      const { model, spec } = loadModel(ck.dir);
      assert.equal(spec.modelType, 'switchyard_moe');
      const B = 2, S = 6;
      const ids = Array.from({ length: B * S }, (_, i) => (i * 7 + 3) % 40);
      const res = model.forward(ids, B, undefined, true);
      const cap = res.capture!;
      const T = B * S;
      const carry = new Map<string, unknown>();
      spec.layers.forEach((ls, l) => {
        const ffn = model.layers[l]!.ffn;
        if (ls.ffn.kind !== 'moe') { assert.ok(!(ffn instanceof MoeBlock)); return; }
        assert.ok(ffn instanceof MoeBlock && ffn.slotRouter, `layer ${l} is zoo-routed`);
        const prefix = `model.layers.${l}.mlp`;
        const router = makeZooRouter(c.router, { layer: l, D, numExperts: E, topK: k, prefix, rng: () => 0.5, precision: 'f64' });
        for (const p of router.params()) p.data.set(ck.tensors.get(p.name)!);
        const bias = ck.tensors.get(`${prefix}.gate.e_score_correction_bias`);
        if (bias) router.loadState!({ [`${prefix}.gate.e_score_correction_bias`]: Array.from(bias) });
        const x = cap.ffnIn[l]!;
        const r = noGrad(() => router.route(constant(Float64Array.from(x), [T, D]), { layer: l, carry, training: false }));
        const ref = new Float64Array(T * D);
        for (let s = 0; s < r.experts.length; s++) {
          const e = r.experts[s]!, t = r.tokens[s]!, g = r.gates.data[s]!;
          const xt = x.subarray(t * D, t * D + D);
          let y: ArrayLike<number>;
          if (e < E) {
            const w = (n: string): Float32Array => ck.tensors.get(`${prefix}.experts.${e}.${n}.weight`)!;
            y = ffnRef(xt, w('gate_proj'), w('up_proj'), w('down_proj'), D, F);
          } else {
            const kind = router.extraExperts[e - E];
            if (kind === 'zero') continue;
            y = kind === 'copy' ? xt : noGrad(() => router.constantExpert!(constant(Float64Array.from(xt), [1, D]), e)).data;
          }
          for (let j = 0; j < D; j++) ref[t * D + j]! += g * y[j]!;
        }
        if (c.shared) {
          const w = (n: string): Float32Array => ck.tensors.get(`${prefix}.shared_experts.${n}.weight`)!;
          for (let t = 0; t < T; t++) {
            const y = ffnRef(x.subarray(t * D, t * D + D), w('gate_proj'), w('up_proj'), w('down_proj'), D, F * c.shared);
            for (let j = 0; j < D; j++) ref[t * D + j]! += y[j]!;
          }
        }
        const out = cap.ffnOut[l]!;
        let maxd = 0;
        for (let i = 0; i < T * D; i++) maxd = Math.max(maxd, Math.abs(out[i]! - ref[i]!));
        assert.ok(maxd < 1e-4, `layer ${l}: max |Δ| ${maxd}`);
        const kinds = new Set(Array.from(r.experts, (e) => (e < E ? 'ffn' : router.extraExperts[e - E])));
        if (c.router.kind === 'moe-plus-plus' && c.layers === 3) assert.ok(kinds.size >= 3, `exercised expert kinds: ${[...kinds].join(', ')}`);
      });
      if (!c.causal) return;
      const V = 40;
      const cache = model.newCache(B);
      const P = 3;
      const prefill = [0, 1].flatMap((b) => ids.slice(b * S, b * S + P));
      const pre = model.forward(prefill, B, cache).logits;
      const full = res.logits;
      let maxd = 0;
      for (let b = 0; b < B; b++) for (let i = 0; i < P * V; i++) maxd = Math.max(maxd, Math.abs(pre[b * P * V + i]! - full[b * S * V + i]!));
      for (let s = P; s < S; s++) {
        const step = model.forward([ids[s]!, ids[S + s]!], B, cache).logits;
        for (let b = 0; b < B; b++) for (let v = 0; v < V; v++) maxd = Math.max(maxd, Math.abs(step[b * V + v]! - full[(b * S + s) * V + v]!));
      }
      assert.ok(maxd < 1e-4, `cached vs full: max |Δ| ${maxd}`);
    });
  }
  it('rejects extra_experts that do not match the router, and malformed router options; no router = softmax-topk', () => {
    const ck = writeTinySwitchyard({ router: { kind: 'null-experts', numNull: 2, normTopK: true }, layers: 1 });
    dirs.push(ck.dir);
    const cfgPath = join(ck.dir, 'config.json');
    writeFileSync(cfgPath, JSON.stringify({ ...ck.config, extra_experts: ['zero'] }));
    assert.throws(() => loadModel(ck.dir), /extra_experts \["zero"\] do not match router null-experts, which declares \["zero","zero"\]/);
    writeFileSync(cfgPath, JSON.stringify({ ...ck.config, router: { kind: 'top-p' } }));
    assert.throws(() => loadModel(ck.dir), /config.json router: router top-p: missing option "threshold"/);
    writeFileSync(cfgPath, JSON.stringify({ ...ck.config, router: { kind: 'top-p', threshold: 0.5 }, extra_experts: ['copy'] }));
    assert.throws(() => loadModel(ck.dir), /do not match router top-p, which declares \[\]/);
  });
});
