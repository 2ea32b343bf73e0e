/**
 * Routed experts: gated FFNs run group by group. For each expert with tokens, gather its rows once, run one GEMM
 * per projection over the whole group, and scatter-add the gate-weighted result. No per-token loops over weights and
 * no dense compute of unchosen experts.
 */
import { linearInto } from '../backend/cpu/linear.js';
import { gatedActivation, type GatedActivation } from '../backend/cpu/activations.js';
import type { Weight } from '../tensor/weight.js';
import type { Routing } from './routers/router.js';
import type { Dispatch } from './dispatch.js';

export interface ExpertWeights {
  gate: Weight; // [F, D]
  up: Weight; // [F, D]
  down: Weight; // [D, F]
  gateBias?: Weight;
  upBias?: Weight;
  downBias?: Weight;
}

export interface ExpertsConfig {
  act: GatedActivation;
  actOpts?: { alpha: number; limit: number };
}

/** One gated FFN over rows x[n, D] → [n, D]. Shared by routed experts, shared experts and dense layers. */
export function gatedFfn(x: Float32Array, n: number, D: number, w: ExpertWeights, cfg: ExpertsConfig): Float32Array {
  const F = w.gate.shape[0]!;
  const g = new Float32Array(n * F);
  const u = new Float32Array(n * F);
  linearInto(x, n, D, w.gate, g, w.gateBias);
  linearInto(x, n, D, w.up, u, w.upBias);
  gatedActivation(cfg.act, g, u, cfg.actOpts);
  const y = new Float32Array(n * D);
  linearInto(g, n, F, w.down, y, w.downBias);
  return y;
}

/**
 * out[T, D] += Σ_slots gate · expert(x[token]). Experts are resolved lazily through `getExpert` so an offloading
 * cache can load only the experts that received tokens.
 */
export function runExperts(
  x: Float32Array, D: number, routing: Routing, d: Dispatch,
  getExpert: (e: number) => ExpertWeights, cfg: ExpertsConfig, out: Float32Array,
): void {
  const k = routing.k;
  for (let e = 0; e < routing.E; e++) {
    const n = d.counts[e]!;
    if (n === 0) continue;
    const start = d.offsets[e]!;
    const xe = new Float32Array(n * D);
    for (let i = 0; i < n; i++) {
      const t = Math.floor(d.order[start + i]! / k);
      xe.set(x.subarray(t * D, t * D + D), i * D);
    }
    const ye = gatedFfn(xe, n, D, getExpert(e), cfg);
    for (let i = 0; i < n; i++) {
      const slot = d.order[start + i]!;
      const t = Math.floor(slot / k);
      const gw = routing.gates[slot]!;
      const ob = t * D;
      const yb = i * D;
      for (let c = 0; c < D; c++) out[ob + c]! += gw * ye[yb + c]!;
    }
  }
}
