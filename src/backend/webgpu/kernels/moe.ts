/**
 * Routed MoE experts on the GPU in four dispatches per token chunk (six past 256 slots, two for one token), with no
 * per-expert host loop and no readback:
 *
 *   out[t] = Σ_j gates[t, j] · FFN_{experts[t, j]}(x[t]),  FFN(x) = down(act(gate·x + gb) ⊙ (up·x + ub)) + db
 *
 * — the same function as `runExperts` / `gatedFfn` of src/moe/experts.ts with `gatedActivation` of
 * src/backend/cpu/activations.ts. Pipeline (MegaBlocks / vLLM fused_moe layout):
 *   1.   moe-permute.ts   count slots per expert, prefix sums, stable order of the T·k slots by expert, tile map
 *                         (one dispatch up to 256 slots, three above)
 *   2.   grouped-gemm.ts  gate/up GEMM per (tile of ≤ 32 rows of one expert) × 64 columns of F, x rows gathered
 *                         while loading, activation fused → h [sorted rows, F]
 *   3.   grouped-gemm.ts  down GEMM → y [slot, D] at each slot's original index
 *   4.   moe-combine.ts   out[t] = Σ_j gates[t, j] · y[t·k + j] in j order
 * With f16 or bf16 weights on a device with subgroup matrices, 2-3 take the tensor-core kernels of coop-gemm.ts (same tiles).
 * Small batches: a chunk of at most MOE_GEMV_MAX_SLOTS = 64 slots (T·k) takes grouped-gemv.ts instead
 * for 2-3 (tiles of ≤ 8 rows, K split over a workgroup's threads, (tiles × N/4) workgroups; why 64: see that file). Decode,
 * a chunk of one token, skips the permutation and fuses down with the combine: two dispatches (moe-decode.ts).
 * `opts.path` forces one path ('decode' | 'gemv' | 'gemm' | 'coop'; tests); all compute the same function (coop on
 * f16 weights with f16-rounded inputs).
 * Everything is deterministic (no float atomics). Expert ids outside [0, E) contribute nothing (zero-computation
 * experts); a token whose slots are all out of range gets a zero row.
 *
 * Weights: gate, up [E, F, D] and down [E, D, F] stacked (uploadStacked), each stored as f32, f16 or bf16 and read
 * with f32 accumulation; the optional biases are f32 [E, F] / [E, D]. Each weight must fit one storage binding
 * (this throws otherwise: split the experts across layers of calls, or store them as f16/bf16). Tokens are processed
 * in chunks small enough that h [chunk·k, F] and y [chunk·k, D] fit a binding.
 *
 * `out` (optional, f32 [T, D]) is overwritten, not accumulated into; without it a new tensor is returned. The
 * inputs are not released.
 */
import type { GpuContext, GpuTensor } from '../context.js';
import { numelOf } from '../context.js';
import type { GpuWeight } from '../weights.js';
import { moePermuteGpu } from './moe-permute.js';
import { groupedDownGpu, groupedGateUpGpu, MOE_TILE_M, type GatedActivationSpec, type GroupedExperts } from './grouped-gemm.js';
import { moeCombineGpu } from './moe-combine.js';
import { coopDownGpu, coopExpertsFit, coopGateUpGpu, type CoopTile } from './coop-gemm.js';
import { groupedDownGemvGpu, groupedGateUpGemvGpu, MOE_GEMV_MAX_SLOTS, MOE_GEMV_TILE_M } from './grouped-gemv.js';
import { moeDecodeDownCombineGpu, moeDecodeGateUpGpu } from './moe-decode.js';

export type { GatedActivationSpec } from './grouped-gemm.js';

export interface MoeExpertsOptions {
  /**
   * 'auto' (default): the one-token kernels of moe-decode.ts for a chunk of one token, the GEMV path for chunks of
   * ≤ MOE_GEMV_MAX_SLOTS slots, tiled GEMM above (on tensor cores when the weights are f16 or bf16 and the device has
   * subgroup matrices: coop-gemm.ts); or force one ('decode': one token per chunk, 'gemm': the f32 tiled kernels
   * even where tensor cores could be used, 'coop': the tensor-core kernels, which must fit).
   */
  path?: 'auto' | 'decode' | 'gemv' | 'gemm' | 'coop';
  /** The tensor-core kernels' tile (default: defaultCoopTile of the adapter's fragment); for benchmarks. */
  coopTile?: CoopTile;
}

/** One layer's routed experts, stacked (see GroupedExperts in grouped-gemm.ts). */
export type GpuExpertSet = GroupedExperts;

function checkSet(ctx: GpuContext, set: GpuExpertSet): void {
  const { E, D, F } = set;
  if (!(E >= 1 && D >= 1 && F >= 1)) throw new Error(`moeExpertsGpu: bad expert set sizes E=${E}, D=${D}, F=${F}`);
  const mats: [GpuWeight, number[]][] = [[set.gate, [E, F, D]], [set.up, [E, F, D]], [set.down, [E, D, F]]];
  for (const [w, shape] of mats) {
    if (numelOf(w.shape) !== E * D * F) throw new Error(`moeExpertsGpu: ${w.name} has shape [${w.shape}], expected [${shape}]`);
    const bytes = E * D * F * (w.dtype === 'f32' ? 4 : 2);
    if (bytes > ctx.maxBinding) {
      throw new Error(`moeExpertsGpu: stacked expert weight ${w.name} [${shape}] (${w.dtype}) takes ${bytes} bytes, more than the `
        + `device's max storage binding of ${ctx.maxBinding} bytes; split the experts into groups or store them as f16/bf16`);
    }
  }
  const vecs: [GpuWeight | undefined, number][] = [[set.gateBias, E * F], [set.upBias, E * F], [set.downBias, E * D]];
  for (const [b, n] of vecs) {
    if (!b) continue;
    if (b.dtype !== 'f32') throw new Error(`moeExpertsGpu: bias ${b.name} must be f32, got ${b.dtype}`);
    if (numelOf(b.shape) !== n) throw new Error(`moeExpertsGpu: bias ${b.name} has shape [${b.shape}], expected ${n} values`);
  }
}

/**
 * The expert kernels a chunk of T tokens × k slots takes: 'decode' (moe-decode.ts), 'gemv' (grouped-gemv.ts),
 * 'coop' (tensor cores, coop-gemm.ts) or 'gemm' (grouped-gemm.ts), as described at the top of this file.
 */
export function moeExpertKernel(ctx: GpuContext, set: GpuExpertSet, T: number, k: number, path: MoeExpertsOptions['path'] = 'auto'): 'decode' | 'gemv' | 'coop' | 'gemm' {
  if (path !== 'auto') return path;
  if (T === 1) return 'decode';
  if (T * k <= MOE_GEMV_MAX_SLOTS) return 'gemv';
  return coopExpertsFit(ctx, set) ? 'coop' : 'gemm';
}

/**
 * out[T, D] = Σ_j gates[t, j] · FFN_{experts[t, j]}(x[t]). x f32 [T, D], experts i32 [T, k], gates f32 [T, k].
 * Records the dispatches and returns `out` (or a new [T, D] tensor, the caller's to release).
 */
export function moeExpertsGpu(
  ctx: GpuContext, x: GpuTensor, T: number, experts: GpuTensor, gates: GpuTensor, k: number, set: GpuExpertSet,
  act: GatedActivationSpec, out?: GpuTensor, opts: MoeExpertsOptions = {},
): GpuTensor {
  checkSet(ctx, set);
  const { E, D, F } = set;
  if (!(k >= 1)) throw new Error(`moeExpertsGpu: k = ${k}`);
  if (x.dtype !== 'f32' || numelOf(x.shape) < T * D) throw new Error(`moeExpertsGpu: x must be f32 with T·D = ${T * D} values, got ${x.dtype} [${x.shape}]`);
  if (experts.dtype !== 'i32' || numelOf(experts.shape) < T * k) throw new Error(`moeExpertsGpu: experts must be i32 [${T}, ${k}], got ${experts.dtype} [${experts.shape}]`);
  if (gates.dtype !== 'f32' || numelOf(gates.shape) < T * k) throw new Error(`moeExpertsGpu: gates must be f32 [${T}, ${k}], got ${gates.dtype} [${gates.shape}]`);
  if (out && (out.dtype !== 'f32' || numelOf(out.shape) < T * D)) throw new Error(`moeExpertsGpu: out must be f32 [${T}, ${D}]`);
  if (out && (out.buffer === x.buffer)) throw new Error('moeExpertsGpu: out must not share a buffer with x');
  const result = out ?? ctx.tensor([T, D]);
  if (T === 0) return result;

  // Tokens per chunk: h [chunk·k, F] and y [chunk·k, D] must each fit one storage binding. Half the limit, because
  // the buffer pool rounds sizes up (by < 16 MiB above 64 MiB) and a binding is always the whole buffer.
  const chunk = opts.path === 'decode' ? 1 : Math.max(1, Math.min(T, Math.floor(ctx.maxBinding / 2 / (4 * k * Math.max(F, D)))));
  for (let t0 = 0; t0 < T; t0 += chunk) {
    const Tc = Math.min(chunk, T - t0);
    const n = Tc * k;
    const kernel = moeExpertKernel(ctx, set, Tc, k, opts.path);
    if (kernel === 'decode') {
      const h = ctx.tensor([k, F]);
      moeDecodeGateUpGpu(ctx, x, experts, t0 * k, k, set, act, h);
      moeDecodeDownCombineGpu(ctx, h, experts, gates, t0 * k, k, set, result, t0);
      ctx.release(h);
      continue;
    }
    const gemv = kernel === 'gemv';
    const coop = kernel === 'coop';
    const pm = moePermuteGpu(ctx, experts, t0 * k, n, E, gemv ? MOE_GEMV_TILE_M : MOE_TILE_M);
    const h = ctx.tensor([n, F]);
    if (coop) coopGateUpGpu(ctx, x, pm, k, set, act, h, opts.coopTile);
    else (gemv ? groupedGateUpGemvGpu : groupedGateUpGpu)(ctx, x, pm, k, set, act, h);
    const y = ctx.tensor([n, D]);
    if (coop) coopDownGpu(ctx, h, pm, set, y, opts.coopTile);
    else (gemv ? groupedDownGemvGpu : groupedDownGpu)(ctx, h, pm, set, y);
    ctx.release(h);
    moeCombineGpu(ctx, y, experts, gates, t0, Tc, D, k, E, result);
    ctx.release(y, pm.perm);
  }
  return result;
}
