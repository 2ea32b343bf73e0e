/**
 * Shared fixtures of the GPU MoE expert tests (test/backend/webgpu/moe.test.ts, grouped-gemv.test.ts): random
 * stacked expert layers in every weight dtype together with the CPU weights holding the same (rounded) values,
 * routings, the CPU reference `runExperts`, and the output check with its relative tolerance.
 */
import assert from 'node:assert/strict';
import type { GpuContext } from '../../src/backend/webgpu/context.js';
import { uploadF32, uploadStacked, type GpuWeight } from '../../src/backend/webgpu/weights.js';
import type { GpuExpertSet } from '../../src/backend/webgpu/kernels/moe.js';
import { runExperts, type ExpertWeights, type ExpertsConfig } from '../../src/moe/experts.js';
import { dispatch } from '../../src/moe/dispatch.js';
import type { Routing } from '../../src/moe/routers/router.js';
import { seededUniform } from '../../src/train/model/rng.js';
import { f16ToF32, f32ToBf16, f32ToF16 } from '../../src/tensor/dtype.js';
import type { Weight } from '../../src/tensor/weight.js';
import { randomF32 } from '../backend/ref.js';

export type WDT = 'f32' | 'f16' | 'bf16';
export type ActKind = 'silu' | 'gelu' | 'gpt_oss';
export interface Biases { gate: boolean; up: boolean; down: boolean }

/** One [rows, cols] matrix per expert in `dtype` storage: CPU weights and the stacked GPU upload of the same values. */
export function stacked(
  ctx: GpuContext, dtype: WDT, E: number, rows: number, cols: number, r: () => number, name: string,
): { cpu: Weight[]; gpu: GpuWeight } {
  const cpu: Weight[] = [];
  for (let e = 0; e < E; e++) {
    const raw = randomF32(rows * cols, r, 0.3);
    if (dtype === 'bf16') cpu.push({ name: `${name}.${e}`, dtype: 'bf16', shape: [rows, cols], data: Uint16Array.from(raw, (v) => f32ToBf16(v)) });
    else if (dtype === 'f16') cpu.push({ name: `${name}.${e}`, dtype: 'f32', shape: [rows, cols], data: Float32Array.from(raw, (v) => f16ToF32(f32ToF16(v))) });
    else cpu.push({ name: `${name}.${e}`, dtype: 'f32', shape: [rows, cols], data: raw });
  }
  const gpu = uploadStacked(ctx, cpu, name, { f16: dtype === 'f16' });
  assert.equal(gpu.dtype, dtype);
  return { cpu, gpu };
}

/** E experts of width F over D: the CPU weights, the GPU set, and `free` to destroy the GPU buffers. */
export interface Layer { E: number; D: number; F: number; cpu: ExpertWeights[]; gpu: GpuExpertSet; free(): void }

/** A random layer (weights uniform in ±0.3, biases in ±0.5) from seededUniform(seed). */
export function makeLayer(ctx: GpuContext, E: number, D: number, F: number, dtype: WDT, biases: Biases, seed: number): Layer {
  const r = seededUniform(seed);
  const gate = stacked(ctx, dtype, E, F, D, r, 'gate');
  const up = stacked(ctx, dtype, E, F, D, r, 'up');
  const down = stacked(ctx, dtype, E, D, F, r, 'down');
  const bias = (on: boolean, n: number, name: string): { cpu?: Weight[]; gpu?: GpuWeight } => {
    if (!on) return {};
    const all = randomF32(E * n, r, 0.5);
    return {
      cpu: Array.from({ length: E }, (_, e) => ({ name: `${name}.${e}`, dtype: 'f32' as const, shape: [n], data: all.slice(e * n, e * n + n) })),
      gpu: uploadF32(ctx, all, name, [E, n]),
    };
  };
  const gb = bias(biases.gate, F, 'gate_bias');
  const ub = bias(biases.up, F, 'up_bias');
  const db = bias(biases.down, D, 'down_bias');
  const cpu: ExpertWeights[] = Array.from({ length: E }, (_, e) => ({
    gate: gate.cpu[e]!, up: up.cpu[e]!, down: down.cpu[e]!,
    gateBias: gb.cpu?.[e], upBias: ub.cpu?.[e], downBias: db.cpu?.[e],
  }));
  const gpu: GpuExpertSet = { E, D, F, gate: gate.gpu, up: up.gpu, down: down.gpu, gateBias: gb.gpu, upBias: ub.gpu, downBias: db.gpu };
  const free = (): void => { for (const w of [gate.gpu, up.gpu, down.gpu, gb.gpu, ub.gpu, db.gpu]) w?.buffer.destroy(); };
  return { E, D, F, cpu, gpu, free };
}

/** A routing of T tokens: `pick(t, j)` gives the expert of slot j, gates random in (0, 1]. */
export function routingOf(T: number, E: number, k: number, seed: number, pick?: (t: number, j: number) => number): Routing {
  const r = seededUniform(seed);
  const experts = new Int32Array(T * k);
  const gates = new Float32Array(T * k);
  for (let t = 0; t < T; t++) {
    // Distinct experts per token when possible (as real routers give), else repeats.
    const pool = Array.from({ length: E }, (_, e) => e);
    for (let j = 0; j < k; j++) {
      let e: number;
      if (pick) e = pick(t, j);
      else if (pool.length) e = pool.splice(Math.floor(r() * pool.length), 1)[0]!;
      else e = Math.floor(r() * E);
      experts[t * k + j] = e;
      gates[t * k + j] = 1 - r();
    }
  }
  return { T, k, E, logits: new Float32Array(0), scores: new Float32Array(0), experts, gates };
}

export function cfgOf(kind: ActKind): ExpertsConfig {
  // GPT-OSS with a small limit so that the clamps of both gate (upper) and up (both sides) are exercised.
  return kind === 'gpt_oss' ? { act: kind, actOpts: { alpha: 1.702, limit: 0.9 } } : { act: kind };
}

/** The CPU reference: runExperts of src/moe/experts.ts on x [T, D]. */
export function cpuMoe(x: Float32Array, routing: Routing, layer: Layer, cfg: ExpertsConfig): Float32Array {
  const out = new Float32Array(routing.T * layer.D);
  runExperts(x, layer.D, routing, dispatch(routing), (e) => layer.cpu[e]!, cfg, out);
  return out;
}

/**
 * Asserts |got − ref| ≤ rel · (rms(ref) + |ref|) elementwise (rows of D, for the message); returns the largest
 * |got − ref| / (rms(ref) + |ref|) seen (the callers' tolerance comments justify `rel`).
 */
export function checkMoeOutput(got: Float32Array, ref: Float32Array, D: number, what: string, rel = 2e-5): number {
  let ss = 0;
  for (const v of ref) ss += v * v;
  const rms = Math.sqrt(ss / Math.max(1, ref.length));
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    const err = Math.abs(got[i]! - ref[i]!);
    const scale = rms + Math.abs(ref[i]!);
    worst = Math.max(worst, err / (scale + 1e-30));
    if (!(err <= rel * scale)) assert.fail(`${what}: element ${i} (token ${Math.floor(i / D)}, d ${i % D}): gpu ${got[i]} vs cpu ${ref[i]} (err ${err}, tol ${rel * scale})`);
  }
  return worst;
}
