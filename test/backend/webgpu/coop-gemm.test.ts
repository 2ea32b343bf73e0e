/**
 * Tensor-core kernels (src/backend/webgpu/kernels/coop-gemm.ts) against float64 references on the values they
 * multiply: f16 weights, activations rounded through f16 (roundToF16), f32 accumulation — and, for bf16 weights
 * (staged as f16, activations split into f16 hi + lo parts), float64 on the exact bf16 weights and the *unrounded*
 * f32 activations: that mode must be as accurate as the f32 path.
 *
 * These tests need an adapter with f16 → f32 subgroup matrices. Lavapipe from Mesa 26 has them (8 × 8 × 8, subgroups
 * of 8); CI's default Mesa 25 does not, so `npm test` runs this file a second time under Mesa 26 from a private
 * sysroot (scripts/mesa-coopmat.mjs, see scripts/run-tests.mjs). Without such an adapter the tests are reported as
 * skipped (never as passed).
 *
 * linear: |gpu − ref| ≤ (K + 8)·2⁻²⁴·Σ_k|x̂_k·ŵ_k| + 1e-7 — the f32 summation bound of matmul.test.ts; the reference
 * is exact on the same f16 inputs, so only the order and rounding of the f32 sums differ. bf16 mode adds the split's
 * representation error: hi + lo carries x to 2⁻²² relative (2⁻²⁵ absolute where lo is subnormal), so
 * |gpu − ref| ≤ ((K + 8)·2⁻²⁴ + 2⁻²¹)·Σ_k|x_k·w_k| + 2⁻²⁴·Σ_k|w_k| + 1e-7.
 *
 * grouped expert kernels, each on its own: gate/up's h = act(x̂·gate + gb, x̂·up + ub) against float64 on x̂ = f16(x),
 * and down's y = f16(h)·down + db against float64 on the GPU's own h — so both sides multiply identical values and
 * |gpu − ref| ≤ 2e-5·(rms(ref) + |ref|), the tolerance (and reasoning) of moe.test.ts's f32 expert path. Covered:
 * E ∈ {1, 4, 16}, T ∈ {1, 3, 37, 70}, k ∈ {1, 2, 4}, all three activations, biases on and off, D = 80 and F = 112
 * (not multiples of the 32 × 64 tile), and a later chunk of the tokens (nonzero slotBase).
 *
 * the whole layer (moeExpertsGpu on tensor cores) against runExperts with roundInputsToF16 (x and the activated
 * hidden rounded through f16, float64 dot products): ≤ 1e-3·(rms + |ref|). Here the reference computes its own h,
 * and rounding h to f16 is discontinuous: where the two sides' h differ by their f32 error (~1e-7 relative) an h that
 * close to an f16 rounding boundary rounds to neighbouring f16 values on the two sides (2⁻¹¹ relative apart), about
 * one value in 500. One such flip moves an output by ≲ 5e-5 of the output scale here (F = 112 terms of size
 * ~0.3·|h|); a row sums up to 4 slots' flips, and the worst seen is 2.2e-4. 1e-3 still catches any wrong row,
 * column, expert or activation (errors of order 1). The worst relative errors are logged.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { GpuContext } from '../../../src/backend/webgpu/context.js';
import { uploadF32, uploadWeight } from '../../../src/backend/webgpu/weights.js';
import { linear } from '../../../src/backend/webgpu/kernels/matmul.js';
import { moeExpertsGpu } from '../../../src/backend/webgpu/kernels/moe.js';
import {
  COOP_TILES, coopDownGpu, coopExpertsFit, coopGateUpGpu, coopGemmFits, coopLinear, type CoopTile,
} from '../../../src/backend/webgpu/kernels/coop-gemm.js';
import { moePermuteGpu } from '../../../src/backend/webgpu/kernels/moe-permute.js';
import { MOE_TILE_M } from '../../../src/backend/webgpu/kernels/grouped-gemm.js';
import { gatedActivation } from '../../../src/backend/cpu/activations.js';
import type { Routing } from '../../../src/moe/routers/router.js';
import { weightToF32, type Weight } from '../../../src/tensor/weight.js';
import { seededUniform } from '../../../src/train/model/rng.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, roundToF16 } from '../../../src/tensor/dtype.js';
import { randomF32 as rand } from '../../backend/ref.js';
import { cfgOf, checkMoeOutput, cpuMoe, makeLayer, routingOf, type ActKind, type Biases, type Layer } from '../../helpers/gpu-experts.js';

const ctx = await GpuContext.create();
const skip = ctx.subgroupMatrix ? false : 'the WebGPU adapter has no f16 → f32 subgroup matrices (run under Mesa 26: see scripts/run-tests.mjs)';
// Set by run-tests.mjs for the Mesa 26 run: there the tests must run, so a missing feature is a failure.
if (!ctx.subgroupMatrix && process.env['SWITCHYARD_REQUIRE_SUBGROUP_MATRIX']) throw new Error(`no subgroup matrices on ${ctx.adapterName}`);
/** Tensor-core dispatches recorded since the last reset (to prove the kernels under test actually ran). */
let coopRuns = 0;
const run = ctx.run.bind(ctx);
ctx.run = (code, ...rest): void => {
  if (code.includes('tensor-core GEMM')) coopRuns++;
  run(code, ...rest);
};
after(() => { ctx.destroy(); });
const noBias = ctx.createStatic(new Float32Array(4), 'no bias');

/**
 * got[M, N] against float64 x[M, K] · w[N, K]ᵀ + b, element by element within tol(Σ_k|x·w|, Σ_k|w|) (the bounds
 * stated at the top of the file).
 */
function assertLinear(got: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array | undefined, M: number, K: number, N: number,
  tol: (mag: number, wmag: number) => number, what: string): void {
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let sum = b ? b[n]! : 0;
      let mag = 0;
      let wmag = 0;
      for (let k = 0; k < K; k++) {
        const p = x[m * K + k]! * w[n * K + k]!;
        sum += p;
        mag += Math.abs(p);
        wmag += Math.abs(w[n * K + k]!);
      }
      const t = tol(mag, wmag);
      const g = got[m * N + n]!;
      assert.ok(Math.abs(g - sum) <= t, `${what} (${m},${n}): ${g} vs ${sum} (tol ${t})`);
    }
  }
}

// Output widths are multiples of 16 so that they fit every fragment n (8 or 16).
test('linear on tensor cores = float64 on the f16-rounded inputs, over shapes and biases', { skip }, async () => {
  let seed = 7;
  for (const M of [1, 5, 33, 70]) {
    for (const K of [8, 40, 200]) {
      for (const N of [16, 48, 144]) {
        for (const withBias of [false, true]) {
          seed++;
          const r = seededUniform(seed);
          const xs = rand(M * K, r, 2);
          const raw = rand(N * K, r);
          const w = uploadWeight(ctx, { name: 'w', dtype: 'f32', shape: [N, K], data: raw }, { f16: true });
          const wv = Float32Array.from(raw, (v) => f16ToF32(f32ToF16(v)));
          const xv = roundToF16(xs.slice());
          assert.ok(coopGemmFits(ctx, K, N, w));
          const bv = withBias ? rand(N, r) : undefined;
          const b = bv ? uploadF32(ctx, bv, 'b') : undefined;
          const x = ctx.upload(xs, [M, K]);
          // Through `linear` (default tile) and directly with every tile.
          for (const tile of [undefined, ...COOP_TILES]) {
            coopRuns = 0;
            const y = tile ? coopLinear(ctx, x, M, K, w, b?.buffer ?? noBias, b !== undefined, ctx.tensor([M, N]), tile)
              : linear(ctx, x, M, K, w, b, undefined, { tensorCores: 'always' });
            assert.equal(coopRuns, 1, 'the tensor-core kernel ran');
            const what = `M=${M} K=${K} N=${N} bias=${withBias} tile=${tile ? `${tile.bn}/${tile.sgm}` : 'default'}`;
            assertLinear(await ctx.read(y), xv, wv, bv, M, K, N, (mag) => (K + 8) * 2 ** -24 * mag + 1e-7, what);
            ctx.release(y);
          }
          ctx.release(x);
          w.buffer.destroy();
          b?.buffer.destroy();
        }
      }
    }
  }
});

test('linear with bf16 weights on tensor cores (split activations) = float64 on the exact weights and f32 inputs', { skip }, async () => {
  let seed = 70;
  for (const M of [9, 40]) {
    for (const K of [8, 24, 200]) {
      for (const N of [16, 144]) {
        seed++;
        const r = seededUniform(seed);
        const xs = rand(M * K, r, 3);
        const bits = Uint16Array.from(rand(N * K, r), (v) => f32ToBf16(v));
        const wv = Float32Array.from(bits, (b) => bf16ToF32(b));
        const w = uploadWeight(ctx, { name: 'w', dtype: 'bf16', shape: [N, K], data: bits });
        assert.ok(coopGemmFits(ctx, K, N, w));
        const bv = seed % 2 ? rand(N, r) : undefined;
        const b = bv ? uploadF32(ctx, bv, 'b') : undefined;
        const x = ctx.upload(xs, [M, K]);
        for (const tile of [undefined, ...COOP_TILES]) {
          coopRuns = 0;
          // `linear` takes the tensor cores by default here (M > 8, bf16 weight).
          const y = tile ? coopLinear(ctx, x, M, K, w, b?.buffer ?? noBias, b !== undefined, ctx.tensor([M, N]), tile) : linear(ctx, x, M, K, w, b);
          assert.equal(coopRuns, 1, 'the tensor-core kernel ran');
          const what = `bf16 M=${M} K=${K} N=${N} tile=${tile ? `${tile.bn}/${tile.sgm}` : 'default'}`;
          assertLinear(await ctx.read(y), xs, wv, bv, M, K, N, (mag, wmag) => ((K + 8) * 2 ** -24 + 2 ** -21) * mag + 2 ** -24 * wmag + 1e-7, what);
          ctx.release(y);
        }
        ctx.release(x);
        w.buffer.destroy();
        b?.buffer.destroy();
      }
    }
  }
});

test('linear: activations beyond ±65504 are clamped to f16\'s range, not turned into infinities', { skip }, async () => {
  const M = 9;
  const K = 16;
  const N = 16;
  const xs = new Float32Array(M * K).fill(1e6);
  const w = uploadWeight(ctx, { name: 'w', dtype: 'f32', shape: [N, K], data: new Float32Array(N * K).fill(0.5) }, { f16: true });
  const x = ctx.upload(xs, [M, K]);
  const y = linear(ctx, x, M, K, w);
  const got = await ctx.read(y);
  for (const v of got) assert.equal(v, 65504 * 0.5 * K);
  ctx.release(x, y);
  w.buffer.destroy();
});

/** Gate/up, then down, on one permutation; each compared with float64 on exactly the values the kernel multiplies. */
async function checkGroupedKernels(
  layer: Layer, T: number, k: number, kind: ActKind, routing: Routing, x: Float32Array, what: string, tile: CoopTile, t0 = 0, t1 = T,
): Promise<number> {
  const { E, D, F } = layer;
  // Tokens [t0, t1) only, as moeExpertsGpu's chunks do: slots from slotBase = t0·k, rows of h and y local to it.
  const slotBase = t0 * k;
  const n = (t1 - t0) * k;
  const cfg = cfgOf(kind);
  const xt = ctx.upload(x, [T, D]);
  const et = ctx.upload(routing.experts, [T, k]);
  const pm = moePermuteGpu(ctx, et, slotBase, n, E, MOE_TILE_M);
  const h = ctx.tensor([n, F]);
  const y = ctx.tensor([n, D]);
  coopRuns = 0;
  coopGateUpGpu(ctx, xt, pm, k, layer.gpu, { kind, alpha: cfg.actOpts?.alpha, limit: cfg.actOpts?.limit }, h, tile);
  coopDownGpu(ctx, h, pm, layer.gpu, y, tile);
  assert.equal(coopRuns, 2);
  const hg = await ctx.read(h, n * F);
  const yg = await ctx.read(y, n * D);
  const order = (await ctx.readI32(pm.perm, pm.orderBase + n)).subarray(pm.orderBase);
  ctx.release(xt, et, h, y, pm.perm);
  // f16 layers: the kernel multiplies f16-rounded activations; bf16 layers: hi + lo carries them to ~f32 precision.
  const split = layer.gpu.gate.dtype === 'bf16';
  const round = (a: Float32Array): Float32Array => (split ? a : roundToF16(a));
  const xr = round(x.slice());
  const f32Of = new Map<Weight, Float32Array>();
  const vals = (w: Weight): Float32Array => {
    let v = f32Of.get(w);
    if (!v) f32Of.set(w, (v = weightToF32(w)));
    return v;
  };
  // h[sorted row r] = act(x̂_t · gate_e + gb, x̂_t · up_e + ub) with slot s = slotBase + order[r], t = s / k,
  // e = experts[s]; y[order[r]] = f16(h[r]) · down_e + db.
  const hRef = new Float32Array(n * F);
  const yRef = new Float32Array(n * D);
  for (let r = 0; r < n; r++) {
    const sl = order[r]!;
    const s = slotBase + sl;
    const t = Math.floor(s / k);
    const e = routing.experts[s]!;
    const ew = layer.cpu[e]!;
    const g = new Float32Array(F);
    const u = new Float32Array(F);
    for (let f = 0; f < F; f++) {
      let sg = ew.gateBias ? vals(ew.gateBias)[f]! : 0;
      let su = ew.upBias ? vals(ew.upBias)[f]! : 0;
      for (let d = 0; d < D; d++) {
        sg += xr[t * D + d]! * vals(ew.gate)[f * D + d]!;
        su += xr[t * D + d]! * vals(ew.up)[f * D + d]!;
      }
      g[f] = sg;
      u[f] = su;
    }
    gatedActivation(cfg.act, g, u, cfg.actOpts);
    hRef.set(g, r * F);
    // y[slot s] = f16(h_gpu[r]) · down_e + db: the GPU's own hidden values, rounded as the kernel rounds them.
    const hr = round(hg.slice(r * F, r * F + F));
    for (let d = 0; d < D; d++) {
      let sy = ew.downBias ? vals(ew.downBias)[d]! : 0;
      for (let f = 0; f < F; f++) sy += hr[f]! * vals(ew.down)[d * F + f]!;
      yRef[sl * D + d] = sy;
    }
  }
  return Math.max(checkMoeOutput(hg, hRef, F, `${what} gate/up`, 2e-5), checkMoeOutput(yg, yRef, D, `${what} down`, 2e-5));
}

/**
 * The whole layer (moeExpertsGpu forced onto tensor cores) against runExperts — with its inputs rounded through f16
 * (`roundInputs`, the f16 mode's reference) or not — within `tol` relative (checkMoeOutput); returns the worst error.
 */
async function checkCoopLayer(layer: Layer, T: number, k: number, kind: ActKind, routing: Routing, x: Float32Array,
  roundInputs: boolean, tol: number, what: string): Promise<number> {
  const cfg = { ...cfgOf(kind), roundInputsToF16: roundInputs };
  const ref = cpuMoe(x, routing, layer, cfg);
  const xt = ctx.upload(x, [T, layer.D]);
  const et = ctx.upload(routing.experts, [T, k]);
  const gt = ctx.upload(routing.gates, [T, k]);
  coopRuns = 0;
  const out = moeExpertsGpu(ctx, xt, T, et, gt, k, layer.gpu, { kind, alpha: cfg.actOpts?.alpha, limit: cfg.actOpts?.limit }, undefined, { path: 'coop' });
  assert.equal(coopRuns, 2, 'gate/up and down ran on tensor cores');
  const worst = checkMoeOutput(await ctx.read(out), ref, layer.D, what, tol);
  ctx.release(out, xt, et, gt);
  return worst;
}

let worstKernel = 0;
let worstLayer = 0;
test('grouped expert GEMMs on tensor cores: each kernel = float64 on its f16 inputs; the layer = runExperts on f16-rounded inputs', { skip }, async () => {
  const D = 80;
  const F = 112;
  const acts: ActKind[] = ['silu', 'gelu', 'gpt_oss'];
  let i = 0;
  for (const E of [1, 4, 16]) {
    const biases: Biases = { gate: i % 2 === 0, up: i % 3 !== 1, down: E !== 4 };
    const layer = makeLayer(ctx, E, D, F, 'f16', biases, 40 + i);
    assert.ok(coopExpertsFit(ctx, layer.gpu));
    for (const T of [1, 3, 37, 70]) {
      for (const k of [1, 2, 4]) {
        i++;
        const kind = acts[i % 3]!;
        const what = `E=${E} T=${T} k=${k} ${kind}`;
        const routing = routingOf(T, E, k, 500 + i);
        const x = rand(T * D, seededUniform(900 + i), 1.5);
        for (const tile of COOP_TILES) {
          const wt = `${what} tile ${tile.bn}/${tile.sgm}`;
          worstKernel = Math.max(worstKernel, await checkGroupedKernels(layer, T, k, kind, routing, x, wt, tile));
          // A later chunk of the tokens (nonzero slotBase), as moeExpertsGpu splits large batches.
          if (T === 70) worstKernel = Math.max(worstKernel, await checkGroupedKernels(layer, T, k, kind, routing, x, `${wt} tokens 40..69`, tile, 40, 70));
        }
        worstLayer = Math.max(worstLayer, await checkCoopLayer(layer, T, k, kind, routing, x, true, 1e-3, what));
      }
    }
    layer.free();
  }
  console.log(`# worst relative error: kernels ${worstKernel.toExponential(2)}, layer vs runExperts ${worstLayer.toExponential(2)}`);
});

test('grouped expert GEMMs with bf16 weights on tensor cores (split activations): kernels = float64 on exact inputs, the layer = runExperts in f32', { skip }, async () => {
  const D = 80;
  const F = 112;
  const acts: ActKind[] = ['silu', 'gelu', 'gpt_oss'];
  let worst = 0;
  let worstL = 0;
  let i = 0;
  for (const E of [1, 16]) {
    const layer = makeLayer(ctx, E, D, F, 'bf16', { gate: E === 1, up: true, down: E !== 1 }, 140 + E);
    assert.ok(coopExpertsFit(ctx, layer.gpu));
    for (const T of [3, 70]) {
      for (const k of [1, 4]) {
        i++;
        const kind = acts[i % 3]!;
        const what = `bf16 E=${E} T=${T} k=${k} ${kind}`;
        const routing = routingOf(T, E, k, 700 + i);
        const x = rand(T * D, seededUniform(1900 + i), 1.5);
        for (const tile of COOP_TILES) worst = Math.max(worst, await checkGroupedKernels(layer, T, k, kind, routing, x, `${what} tile ${tile.bn}/${tile.sgm}`, tile));
        // The layer: the f32 path's reference and tolerance (moe.test.ts) — no f16 rounding anywhere.
        worstL = Math.max(worstL, await checkCoopLayer(layer, T, k, kind, routing, x, false, 2e-5, what));
      }
    }
    layer.free();
  }
  console.log(`# bf16 worst relative error: kernels ${worst.toExponential(2)}, layer vs runExperts (f32) ${worstL.toExponential(2)}`);
});
