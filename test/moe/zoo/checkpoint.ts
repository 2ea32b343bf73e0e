/**
 * Tiny switchyard_moe checkpoints for the inference tests: config.json + model.safetensors with random f32 weights
 * (the zoo router's own parameters as its factory names them, plus router state such as an aux-free bias).
 * Returns every tensor written so tests can build float64 references.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSafetensors, type TensorToWrite } from '../../../src/io/safetensors.js';
import { makeZooRouter, zooExtraExperts } from '../../../src/moe/routers/zoo.js';
import type { RouterSpec } from '../../../src/moe/routers/router.js';
import { rng } from './helpers.js';

export interface TinyModel {
  router: RouterSpec;
  layers: number;
  /** Layers that are dense MLPs (config mlp_only_layers). */
  denseLayers?: number[];
  sharedExperts?: number;
  D?: number;
  E?: number;
  F?: number;
  k?: number;
  V?: number;
  seed?: number;
}

export function writeTinySwitchyard(m: TinyModel): { dir: string; tensors: Map<string, Float32Array>; config: Record<string, unknown> } {
  const D = m.D ?? 16, E = m.E ?? 8, F = m.F ?? 12, k = m.k ?? 2, V = m.V ?? 40;
  const H = 4, KVH = 2, hd = D / H;
  const r = rng(m.seed ?? 1);
  const tensors = new Map<string, Float32Array>();
  const shapes = new Map<string, number[]>();
  const add = (name: string, shape: number[], fill: 'rand' | 'ones' | Float32Array = 'rand', s = 1 / Math.sqrt(shape[shape.length - 1]!)): void => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = fill instanceof Float32Array ? fill : Float32Array.from({ length: n }, () => (fill === 'ones' ? 1 : (r() * 2 - 1) * Math.sqrt(3) * s));
    tensors.set(name, data);
    shapes.set(name, shape);
  };
  add('model.embed_tokens.weight', [V, D], 'rand', 1);
  const dense = new Set(m.denseLayers ?? []);
  for (let i = 0; i < m.layers; i++) {
    const p = `model.layers.${i}`;
    add(`${p}.input_layernorm.weight`, [D], 'ones');
    add(`${p}.post_attention_layernorm.weight`, [D], 'ones');
    add(`${p}.self_attn.q_proj.weight`, [H * hd, D]);
    add(`${p}.self_attn.k_proj.weight`, [KVH * hd, D]);
    add(`${p}.self_attn.v_proj.weight`, [KVH * hd, D]);
    add(`${p}.self_attn.o_proj.weight`, [D, H * hd]);
    add(`${p}.self_attn.q_norm.weight`, [hd], 'ones');
    add(`${p}.self_attn.k_norm.weight`, [hd], 'ones');
    const mlp = `${p}.mlp`;
    if (dense.has(i)) {
      add(`${mlp}.gate_proj.weight`, [F, D]);
      add(`${mlp}.up_proj.weight`, [F, D]);
      add(`${mlp}.down_proj.weight`, [D, F]);
      continue;
    }
    const router = makeZooRouter(m.router, { layer: i, D, numExperts: E, topK: k, prefix: mlp, rng: r, precision: 'f32' });
    for (const prm of router.params()) {
      // Gating-residual weights start at zero in training; give them values so the test exercises them.
      const data = prm.name.endsWith('.residual.weight') ? Float32Array.from(prm.data, () => (r() * 2 - 1) * 0.3) : Float32Array.from(prm.data);
      add(prm.name, [...prm.shape], data);
    }
    for (const [key, v] of Object.entries(router.state?.() ?? {})) {
      if (key.endsWith('e_score_correction_bias')) add(key, [v.length], Float32Array.from(v, () => (r() * 2 - 1) * 0.2));
    }
    for (let e = 0; e < E; e++) {
      add(`${mlp}.experts.${e}.gate_proj.weight`, [F, D]);
      add(`${mlp}.experts.${e}.up_proj.weight`, [F, D]);
      add(`${mlp}.experts.${e}.down_proj.weight`, [D, F]);
    }
    if (m.sharedExperts) {
      const Fs = F * m.sharedExperts;
      add(`${mlp}.shared_experts.gate_proj.weight`, [Fs, D]);
      add(`${mlp}.shared_experts.up_proj.weight`, [Fs, D]);
      add(`${mlp}.shared_experts.down_proj.weight`, [D, Fs]);
    }
  }
  add('model.norm.weight', [D], 'ones');
  add('lm_head.weight', [V, D]);
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-zoo-'));
  const out: Record<string, TensorToWrite> = {};
  for (const [name, data] of tensors) out[name] = { dtype: 'F32', shape: shapes.get(name)!, data };
  writeFileSync(join(dir, 'model.safetensors'), encodeSafetensors(out));
  const config: Record<string, unknown> = {
    model_type: 'switchyard_moe', vocab_size: V, hidden_size: D, num_hidden_layers: m.layers, num_attention_heads: H,
    num_key_value_heads: KVH, head_dim: hd, max_position_embeddings: 256, rms_norm_eps: 1e-6, rope_theta: 10000,
    tie_word_embeddings: false, num_experts: E, num_experts_per_tok: k, moe_intermediate_size: F, intermediate_size: F,
    decoder_sparse_step: 1, mlp_only_layers: [...dense], router: m.router, extra_experts: zooExtraExperts(m.router),
    n_shared_experts: m.sharedExperts ?? 0, eos_token_id: 2,
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  return { dir, tensors, config };
}
