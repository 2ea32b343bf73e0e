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
import { roundToF16 } from '../tensor/dtype.js';

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
  /**
   * Round the inputs of the three matmuls (x, and the activated hidden) through IEEE f16, as tensor-core kernels
   * see them (the reference for WebGPU's f16 path on subgroup matrices; see CpuOps).
   */
  roundInputsToF16?: boolean;
}

/** One gated FFN over rows x[n, D] → [n, D]. Shared by routed experts, shared experts and dense layers. */
export function gatedFfn(x: Float32Array, n: number, D: number, w: ExpertWeights, cfg: ExpertsConfig): Float32Array {
  const F = w.gate.shape[0]!;
  if (cfg.roundInputsToF16) x = roundToF16(x.slice(0, n * D));
  const g = new Float32Array(n * F);
  const u = new Float32Array(n * F);
  linearInto(x, n, D, w.gate, g, w.gateBias);
  linearInto(x, n, D, w.up, u, w.upBias);
  gatedActivation(cfg.act, g, u, cfg.actOpts);
  if (cfg.roundInputsToF16) roundToF16(g);
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
  runGroups(x, D, routing.E, d, (slot) => Math.floor(slot / k), (slot) => routing.gates[slot]!, getExpert, cfg, out);
}

/** Slots of a variable routing: slot i sends token tokens[i] to expert experts[i] with weight gates[i]. */
export interface Slots {
  tokens: Int32Array;
  experts: Int32Array;
  gates: ArrayLike<number>;
}

/**
 * Counting sort of the slots whose expert is a routed FFN expert (0..E−1) by expert, stable. Slots with ids ≥ E
 * (zero-computation experts) are left out: the caller handles them. `order` holds slot indices.
 */
export function dispatchSlots(experts: Int32Array, E: number): Dispatch {
  const counts = new Int32Array(E);
  let n = 0;
  for (let s = 0; s < experts.length; s++) {
    const e = experts[s]!;
    if (e < 0) throw new Error(`router chose expert ${e}`);
    if (e < E) { counts[e]!++; n++; }
  }
  const offsets = new Int32Array(E + 1);
  for (let e = 0; e < E; e++) offsets[e + 1] = offsets[e]! + counts[e]!;
  const fill = offsets.slice(0, E);
  const order = new Int32Array(n);
  for (let s = 0; s < experts.length; s++) {
    const e = experts[s]!;
    if (e < E) order[fill[e]!++] = s;
  }
  return { counts, offsets, order };
}

/**
 * runExperts for a variable number of slots per token (expert choice, top-p, ReLU, null experts, ...): the FFN
 * slots grouped per expert, one GEMM per projection per group. Slots with ids ≥ E are skipped (not FFN experts).
 */
export function runExpertSlots(
  x: Float32Array, D: number, slots: Slots, E: number,
  getExpert: (e: number) => ExpertWeights, cfg: ExpertsConfig, out: Float32Array,
): void {
  runGroups(x, D, E, dispatchSlots(slots.experts, E), (s) => slots.tokens[s]!, (s) => slots.gates[s]!, getExpert, cfg, out);
}

/** For each expert with slots: gather its rows once, one gated FFN over the group, gate-weighted scatter-add. */
function runGroups(
  x: Float32Array, D: number, E: number, d: Dispatch, tokenOf: (slot: number) => number, gateOf: (slot: number) => number,
  getExpert: (e: number) => ExpertWeights, cfg: ExpertsConfig, out: Float32Array,
): void {
  for (let e = 0; e < E; e++) {
    const n = d.counts[e]!;
    if (n === 0) continue;
    const start = d.offsets[e]!;
    const xe = new Float32Array(n * D);
    for (let i = 0; i < n; i++) {
      const t = tokenOf(d.order[start + i]!);
      xe.set(x.subarray(t * D, t * D + D), i * D);
    }
    const ye = gatedFfn(xe, n, D, getExpert(e), cfg);
    for (let i = 0; i < n; i++) {
      const slot = d.order[start + i]!;
      const t = tokenOf(slot);
      const gw = gateOf(slot);
      const ob = t * D;
      const yb = i * D;
      for (let c = 0; c < D; c++) out[ob + c]! += gw * ye[yb + c]!;
    }
  }
}
