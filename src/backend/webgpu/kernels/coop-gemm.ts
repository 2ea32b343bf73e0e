/**
 * Tensor-core GEMMs: the dense linear layer and the two grouped expert GEMMs of the MoE layer written with Dawn's
 * subgroup matrices (`chromium-experimental-subgroup-matrix`, Vulkan's VK_KHR_cooperative_matrix), used for f16 and
 * bf16 weights when the device has an f16 × f16 → f32 fragment (GpuContext.subgroupMatrix). They compute the same
 * functions as matmul.ts (`linear`) and grouped-gemm.ts (gate/up with the activation fused, down); products are
 * accumulated in f32, and how the f32 activations enter the f16 fragments depends on the weights (CoopMode):
 *   - f16 weights (`--f16`): the usual mixed precision of tensor cores — activations rounded to f16 (clamped to
 *     ±65504) as they are staged, weights used as stored;
 *   - bf16 weights (checkpoints as shipped): activations split into two f16 parts, hi (the value cut to 10 mantissa
 *     bits) and lo = f16(a − hi), multiplied separately (twice the fragment products) — ≥ 21 significant bits, so
 *     results match the f32 path (coop-models.test.ts: the bf16 fixture within 2.5e-6 of float64); weights staged
 *     per k-step into workgroup memory as f16 (exact for |w| in [6e-5, 65504]).
 *
 * Layout: one workgroup of 4 subgroups computes a 32-row output tile (the grouped kernels' tile = one permutation
 * tile of ≤ 32 rows of one expert, exactly as grouped-gemm.ts) of `bn` columns, the subgroups in a grid of `sgm` ×
 * 4/`sgm` (CoopTile): 32 × 64 in 2 × 2 (each subgroup 16 × 32) for 8-wide fragments, 32 × 128 in 1 × 4 (each 32 × 32,
 * 2 × 2 fragments of 16 × 16) for 16-wide ones — more fragments per subgroup means fewer fragment loads per
 * multiply-accumulate. The depth K advances in steps of BK = 32 (16 for bf16):
 *   - the A tile [32][BK] is staged in workgroup memory as f16 (both parts for bf16; rows gathered by token for
 *     gate/up, zero outside the tile's rows and [0, K)), row stride BK + 8 halves (16-byte aligned, and off the
 *     64-byte bank period);
 *   - f16: each subgroup, per k-fragment of the step, loads its left fragments from that tile and its right fragments
 *     straight from the f16 weight in storage: the weight is [N, K] row-major, i.e. the right operand (K × N) in
 *     column-major order with stride K, so no transpose is needed; then fragment multiply-accumulates;
 *   - bf16: the weights' [bn][BK] tiles are converted into workgroup memory (same column-major layout, stride BK + 8)
 *     and the right fragments come from there.
 * The f32 results pass through one workgroup tile [32][bn], a weight at a time (gate's sums go to registers before
 * up's are stored; ≤ 18.5 KiB of workgroup memory in all, ≤ 31.2 KiB with bf16 staging), and every thread
 * finishes a share of the outputs: bias, activation (gate/up), store with bounds checks (scattered to the slot's row
 * for down).
 *
 * Requirements (checked by `coopGemmFits`; otherwise callers keep the f32 tiled kernels): K a multiple of 8
 * (fragment loads need 16-byte aligned offsets and strides) and N a multiple of the fragment's n (no fragment
 * straddles the last column), and the workgroup memory within the device's limit. Subgroup-matrix calls must be
 * subgroup-uniform: the only non-workgroup-uniform values they see are the subgroup id and values derived from it,
 * so the module turns Tint's conservative workgroup-level check off (`diagnostic(off, chromium.subgroup_matrix_uniformity)`).
 *
 * Tuned: not yet on hardware with tensor cores. Both tiles and both modes are tested for correctness on lavapipe's
 * 8 × 8 × 8 fragments (subgroup size 8); see NOTES.md.
 */
import type { GpuContext, GpuTensor } from '../context.js';
import { Params } from '../context.js';
import type { SubgroupMatrixShape } from '../gpu.js';
import type { GpuWeight } from '../weights.js';
import { cdiv, memoCode, MAX_GRID_DIM, rep, weightBinding, weightReader } from '../wgsl.js';
import type { MoePermutation } from './moe-permute.js';
import {
  MOE_TILE_M, groupedDownDecls, groupedDownEpilogue, groupedGateUpDecls, groupedGateUpEpilogue, groupedTileLookup, runGroupedDown,
  runGroupedGateUp, type GatedActivationSpec, type GroupedExperts, type GroupedKernel,
} from './grouped-gemm.js';

const BM = MOE_TILE_M; // 32
const SUBGROUPS = 4;
/** Depth step: 32 when the right fragments come straight from f16 storage, 16 when bf16 weights are staged. */
const bkOf = (mode: CoopMode): number => (mode === 'f16' ? 32 : 16);

/**
 * How a kernel feeds the f16 fragments:
 *   'f16'   f16 weights, loaded straight from storage; activations rounded to f16 (one product per fragment pair).
 *   'bf16'  bf16 weights, staged through workgroup memory as f16 (exact for |w| in [6e-5, 65504]); activations
 *           split as a = hi + lo, hi = a cut to f16's 10 mantissa bits, lo = f16(a − hi) (≥ 21 significant bits,
 *           f32 has 24), two products per fragment pair — tensor-core speed with f32-path accuracy, so bf16
 *           checkpoints use it by default.
 */
export type CoopMode = 'f16' | 'bf16';

/**
 * The output tile of one workgroup: BM = 32 rows × `bn` columns, split over its 4 subgroups as a grid of `sgm` rows
 * × 4 / `sgm` columns. Each subgroup owns (32 / sgm) × (bn·sgm / 4) outputs, i.e. that many / (m·n) fragments.
 */
export interface CoopTile { bn: 64 | 128; sgm: 1 | 2 }

/** Every tile the kernels are written for (tests run each). */
export const COOP_TILES: readonly CoopTile[] = [{ bn: 64, sgm: 2 }, { bn: 128, sgm: 1 }];

/**
 * The tile for a fragment shape: with 16-wide fragments (NVIDIA) 32 × 128 in a 1 × 4 subgroup grid — 2 × 2 fragments
 * per subgroup, so each k-step loads 2 left and 2 right fragments for 4 multiply-accumulates; with 8-wide fragments
 * 32 × 64 in 2 × 2 (2 × 4 fragments per subgroup). Not yet tuned on hardware (see NOTES.md).
 */
export function defaultCoopTile(frag: SubgroupMatrixShape): CoopTile {
  return frag.m >= 16 && frag.n >= 16 ? { bn: 128, sgm: 1 } : { bn: 64, sgm: 2 };
}

/** The kernel mode for these weights (all f16, or all bf16), or undefined when they cannot take tensor cores. */
export function coopModeOf(...weights: GpuWeight[]): CoopMode | undefined {
  if (weights.every((w) => w.dtype === 'f16')) return 'f16';
  if (weights.every((w) => w.dtype === 'bf16')) return 'bf16';
  return undefined;
}

/** Workgroup memory of a kernel: the A tile(s), staged weight tiles, the f32 result tile, row indices, info. */
function workgroupBytes(mode: CoopMode, tile: CoopTile, nWeights: number): number {
  const st = bkOf(mode) + 8;
  const a = BM * st * 2 * (mode === 'bf16' ? 2 : 1);
  const b = mode === 'bf16' ? nWeights * tile.bn * st * 2 : 0;
  return a + b + BM * tile.bn * 4 + BM * 4 + 16;
}

/**
 * Whether a [·, K] × [N, K]ᵀ product can take the tensor-core kernels on this context: f16 or bf16 weights (all the
 * same), K a multiple of 8, N of the fragment's n, and the kernel's workgroup memory within the device's limit.
 */
export function coopGemmFits(ctx: GpuContext, K: number, N: number, ...weights: GpuWeight[]): boolean {
  const f = ctx.subgroupMatrix;
  const mode = coopModeOf(...weights);
  if (f === undefined || mode === undefined || K % 8 !== 0 || N % f.n !== 0) return false;
  return workgroupBytes(mode, defaultCoopTile(f), weights.length) <= ctx.device.limits.maxComputeWorkgroupStorageSize;
}

interface CoopKernel {
  frag: SubgroupMatrixShape;
  tile: CoopTile;
  mode: CoopMode;
  /**
   * struct P and the bindings; the weights named in `weights` must be bound as array<f16> ('f16') or as bf16 with
   * their `<name>_at2` readers ('bf16', wgsl.ts weightBinding / weightReader).
   */
  decls: string;
  /** The weights multiplied by the same A tile (gate and up, or one). */
  weights: string[];
  /** Code at the top of main that defines rows, n0, K, N and wrow0 (weight row of output column 0), then barriers. */
  setup: string;
  /** Sets `v` (f32) to A[row r][depth k] for r < rows, k < K. */
  loadA: string;
  /** Finishes the output at tile row r, column col (< N) given each weight's sum (WGSL expressions, in order). */
  epilogue: (sums: string[]) => string;
}

function coopCode(o: CoopKernel): string {
  const { m, n, k, subgroupSize } = o.frag;
  const { bn, sgm } = o.tile;
  const sgn = SUBGROUPS / sgm;
  const WG = SUBGROUPS * subgroupSize;
  const SBM = BM / sgm;
  const SBN = bn / sgn;
  const FM = SBM / m;
  const FN = SBN / n;
  const NOUT = (BM * bn) / WG;
  const L = `subgroup_matrix_left<f16, ${k}, ${m}>`;
  const R = `subgroup_matrix_right<f16, ${n}, ${k}>`;
  const C = `subgroup_matrix_result<f32, ${n}, ${m}>`;
  const W = o.weights;
  const split = o.mode === 'bf16';
  const BK = bkOf(o.mode);
  const accs = W.map((w) => rep(FM, (i) => rep(FN, (j) => `  var acc_${w}_${i}_${j} = ${C}();`))).join('\n');
  const lefts = rep(FM, (i) => `        let a${i} = subgroupMatrixLoad<${L}, row_major>(&As, (rb + ${i * m}u) * AST + kk, AST);${split ? `
        let l${i} = subgroupMatrixLoad<${L}, row_major>(&Al, (rb + ${i * m}u) * AST + kk, AST);` : ''}`);
  // Right fragments: straight from the f16 weight in storage, or from its staged f16 tile (column c at c · AST).
  const rightAt = (w: string, j: number): string => (split
    ? `subgroupMatrixLoad<${R}, col_major>(&Bs_${w}, (sn * ${SBN}u + ${j * n}u) * AST + kk, AST)`
    : `subgroupMatrixLoad<${R}, col_major>(&${w}, (wrow0 + cb + ${j * n}u) * K + k0 + kk, K)`);
  const mma = (w: string, i: number, j: number): string => (split
    ? `          acc_${w}_${i}_${j} = subgroupMatrixMultiplyAccumulate(l${i}, b_${w}, acc_${w}_${i}_${j});
          acc_${w}_${i}_${j} = subgroupMatrixMultiplyAccumulate(a${i}, b_${w}, acc_${w}_${i}_${j});`
    : `          acc_${w}_${i}_${j} = subgroupMatrixMultiplyAccumulate(a${i}, b_${w}, acc_${w}_${i}_${j});`);
  const rights = rep(FN, (j) => `        if (cb + ${j * n}u < N) {
${W.map((w) => `          let b_${w} = ${rightAt(w, j)};
${rep(FM, (i) => mma(w, i, j))}`).join('\n')}
        }`);
  // bf16: each weight's [bn][BK] tile → f16 in workgroup memory, a pair of depths per invocation step (K is even).
  const stageB = split ? W.map((w) => `    for (var q = 0u; q < ${(bn * BK) / 2 / WG}u; q++) {
      let idx = li + WG * q;
      let c = idx / ${BK / 2}u;
      let kk = 2u * (idx % ${BK / 2}u);
      var v = vec2<f32>(0.0, 0.0);
      if (n0 + c < N && k0 + kk < K) { v = ${w}_at2((wrow0 + n0 + c) * K + k0 + kk); }
      v = clamp(v, vec2<f32>(-65504.0), vec2<f32>(65504.0));
      Bs_${w}[c * AST + kk] = f16(v.x);
      Bs_${w}[c * AST + kk + 1u] = f16(v.y);
    }`).join('\n') + '\n' : '';
  // hi: v with its mantissa cut to f16's 10 bits (exact as f16 in the normal range), so lo = v − hi is exact in f32
  // and |lo| < 2⁻¹⁰·|v|. (Not f16(v) and v − f32(f16(v)): compilers may fold that round trip to v, and lo to 0.)
  const storeA = split
    ? `      let vc = clamp(v, -65504.0, 65504.0);
      let hi = bitcast<f32>(bitcast<u32>(vc) & 0xffffe000u);
      As[r * AST + kk] = f16(hi);
      Al[r * AST + kk] = f16(vc - hi);`
    : `      As[r * AST + kk] = f16(clamp(v, -65504.0, 65504.0));`;
  // The results pass through one workgroup tile C, one weight at a time; all but the last are copied to registers.
  const results = W.map((w, wi) => `${rep(FM, (i) => rep(FN, (j) =>
    `  subgroupMatrixStore<row_major>(&C, (rb + ${i * m}u) * BN + sn * ${SBN}u + ${j * n}u, acc_${w}_${i}_${j}, BN);`))}
  workgroupBarrier();${wi < W.length - 1 ? `
  var s_${w}: array<f32, ${NOUT}>;
  for (var q = 0u; q < p.nOut; q++) { s_${w}[q] = C[li + WG * q]; }
  workgroupBarrier();` : ''}`).join('\n');
  const sums = W.map((w, wi) => (wi < W.length - 1 ? `s_${w}[q]` : 'C[idx]'));
  return `enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium.subgroup_matrix_uniformity);
// tensor-core GEMM: ${m}×${n}×${k} f16 fragments, ${SUBGROUPS} subgroups of ${subgroupSize} (${sgm}×${sgn}), ${BM}×${bn} tile, ${o.mode} weights${split ? ', split activations' : ''}
${o.decls}
const BM = ${BM}u;
const BN = ${bn}u;
const BK = ${BK}u;
const AST = ${BK + 8}u;
const WG = ${WG}u;
var<workgroup> As: array<f16, ${BM * (BK + 8)}>;
${split ? `var<workgroup> Al: array<f16, ${BM * (BK + 8)}>;
${W.map((w) => `var<workgroup> Bs_${w}: array<f16, ${bn * (BK + 8)}>;`).join('\n')}` : ''}
var<workgroup> C: array<f32, ${BM * bn}>;
var<workgroup> rowIdx: array<u32, ${BM}>;
var<workgroup> info: vec4<u32>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32, @builtin(subgroup_id) sgid: u32) {
${o.setup}
  // This subgroup's block of the tile: rows rb .. rb + ${SBM}, output columns cb .. cb + ${SBN}.
  let sm = sgid / ${sgn}u;
  let sn = sgid % ${sgn}u;
  let rb = sm * ${SBM}u;
  let cb = n0 + sn * ${SBN}u;
${accs}
  for (var k0 = 0u; k0 < K; k0 += BK) {
    // A tile [BM][BK] → f16${split ? ' hi and lo parts' : ''}, zero outside the tile's rows and [0, K).
    for (var q = 0u; q < ${(BM * BK) / WG}u; q++) {
      let idx = li + WG * q;
      let r = idx / BK;
      let kk = idx % BK;
      var v = 0.0;
      if (r < rows && k0 + kk < K) { ${o.loadA} }
${storeA}
    }
${stageB}    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk += ${k}u) {
      if (k0 + kk < K) {
${lefts}
${rights}
      }
    }
    workgroupBarrier();
  }
${results}
  for (var q = 0u; q < p.nOut; q++) {
    let idx = li + WG * q;
    let r = idx / BN;
    let col = n0 + idx % BN;
    if (r < rows && col < N) {
${o.epilogue(sums)}
    }
  }
}
`;
}

// ------------------------------------------------------------------ dense linear

function linearCodeUncached(frag: SubgroupMatrixShape, tile: CoopTile, mode: CoopMode): string {
  return coopCode({
    frag,
    tile,
    mode,
    decls: `struct P { M: u32, N: u32, K: u32, hasBias: u32, nOut: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
${mode === 'f16' ? '@group(0) @binding(2) var<storage, read> w: array<f16>;' : `${weightBinding(2, 'w', 'bf16')}\n${weightReader('w', 'bf16')}`}
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;`,
    weights: ['w'],
    setup: `  let m0 = wid.y * BM;
  let n0 = wid.x * BN;
  let K = p.K;
  let N = p.N;
  let rows = min(BM, p.M - m0);
  let wrow0 = 0u;`,
    loadA: 'v = x[(m0 + r) * K + k0 + kk];',
    epilogue: ([sum]) => `      var v = ${sum};
      if (p.hasBias != 0u) { v += bias[col]; }
      y[(m0 + r) * N + col] = v;`,
  });
}

/**
 * y[M, N] = x[M, K] · w[N, K]ᵀ (+ bias[N]) into `out` on tensor cores (returned); w must be f16 or bf16 and
 * coopGemmFits must hold. `bias` is the buffer to bind (a dummy when hasBias is false); `tile` defaults to
 * defaultCoopTile.
 */
export function coopLinear(
  ctx: GpuContext, x: GpuTensor, M: number, K: number, w: GpuWeight, bias: GPUBuffer, hasBias: boolean, out: GpuTensor, tile?: CoopTile,
): GpuTensor {
  const frag = ctx.subgroupMatrix;
  const N = w.shape[0]!;
  if (!frag || !coopGemmFits(ctx, K, N, w)) throw new Error(`coopLinear: ${w.name} (${w.dtype} [${w.shape}]) cannot take the tensor-core path here`);
  const t = tile ?? defaultCoopTile(frag);
  const gx = cdiv(N, t.bn);
  const gy = cdiv(M, BM);
  if (gx > MAX_GRID_DIM || gy > MAX_GRID_DIM) throw new Error(`linear: [${M}, ${N}] output is too large for one dispatch`);
  const WG = SUBGROUPS * frag.subgroupSize;
  const params = new Params().u32(M).u32(N).u32(K).u32(hasBias ? 1 : 0).u32((BM * t.bn) / WG);
  ctx.run(linearCode(frag, t, coopModeOf(w)!), params, [x, w.buffer, bias, out], [gx, gy]);
  ctx.tensorCoreDispatches++;
  return out;
}

// ------------------------------------------------------------------ grouped expert GEMMs

const GRID = 'nNb: u32, total: u32, gx: u32, nOut: u32';

/** The grouped kernels' setup: tile lookup (uniform), the tile's gathered rows, weight base e·N. */
function groupedSetup(rowsPrologue: string, N: string, K: string): string {
  return `${groupedTileLookup('nNb')}
  let n0 = inf.z * BN;
  let K = ${K};
  let N = ${N};
  let wrow0 = e * N;
  for (var i = li; i < BM; i += WG) {
    var ri = 0u;
    if (i < rows) { ${rowsPrologue} }
    rowIdx[i] = ri;
  }
  workgroupBarrier();`;
}

function gateUpCodeUncached(frag: SubgroupMatrixShape, tile: CoopTile, mode: CoopMode): string {
  return coopCode({
    frag,
    tile,
    mode,
    decls: groupedGateUpDecls(mode, mode, 'x', GRID, mode === 'f16'),
    weights: ['wg', 'wu'],
    setup: groupedSetup('ri = (p.slotBase + perm[p.orderBase + r0 + i]) / p.k;', 'p.F', 'p.D'),
    loadA: 'v = x[rowIdx[r] * K + k0 + kk];',
    epilogue: ([g, u]) => groupedGateUpEpilogue(g!, u!, 'r', 'col'),
  });
}

function downCodeUncached(frag: SubgroupMatrixShape, tile: CoopTile, mode: CoopMode): string {
  return coopCode({
    frag,
    tile,
    mode,
    decls: groupedDownDecls(mode, 'h', GRID, mode === 'f16'),
    weights: ['wd'],
    setup: groupedSetup('ri = perm[p.orderBase + r0 + i];', 'p.D', 'p.F'),
    loadA: 'v = h[(r0 + r) * K + k0 + kk];',
    epilogue: ([sum]) => groupedDownEpilogue(sum!, 'rowIdx[r]', 'col'),
  });
}

/** Whether an expert set's grouped GEMMs can take the tensor-core kernels (f16 or bf16 stacks, D and F multiples of 8 / n). */
export function coopExpertsFit(ctx: GpuContext, set: GroupedExperts): boolean {
  return coopGemmFits(ctx, set.D, set.F, set.gate, set.up) && coopGemmFits(ctx, set.F, set.D, set.down)
    && coopModeOf(set.gate, set.up) === coopModeOf(set.down);
}

/** The checks both grouped entry points make, and the kernel description runGroupedGateUp / runGroupedDown take. */
function groupedKernel(ctx: GpuContext, set: GroupedExperts, pm: MoePermutation, tile: CoopTile | undefined, what: string,
  code: (frag: SubgroupMatrixShape, tile: CoopTile, mode: CoopMode) => string): GroupedKernel {
  const frag = ctx.subgroupMatrix;
  if (!frag || !coopExpertsFit(ctx, set)) throw new Error(`${what}: this expert set cannot take the tensor-core path here`);
  if (pm.bm !== BM) throw new Error(`${what}: permutation built with ${pm.bm}-row tiles, expected ${BM}`);
  const t = tile ?? defaultCoopTile(frag);
  // The kernel's own P field after the grid fields: nOut, the outputs each invocation finishes.
  return { code: code(frag, t, coopModeOf(set.gate, set.up, set.down)!), cols: t.bn, loop: [(BM * t.bn) / (SUBGROUPS * frag.subgroupSize)] };
}

/** Gate/up of grouped-gemm.ts (same arguments, same bindings) on tensor cores. */
export function coopGateUpGpu(
  ctx: GpuContext, x: GpuTensor, pm: MoePermutation, k: number, set: GroupedExperts, act: GatedActivationSpec, h: GpuTensor, tile?: CoopTile,
): void {
  runGroupedGateUp(ctx, groupedKernel(ctx, set, pm, tile, 'coopGateUpGpu', gateUpCode), x, pm, k, set, act, h);
  ctx.tensorCoreDispatches++;
}

/** Down of grouped-gemm.ts on tensor cores. */
export function coopDownGpu(ctx: GpuContext, h: GpuTensor, pm: MoePermutation, set: GroupedExperts, y: GpuTensor, tile?: CoopTile): void {
  runGroupedDown(ctx, groupedKernel(ctx, set, pm, tile, 'coopDownGpu', downCode), h, pm, set, y);
  ctx.tensorCoreDispatches++;
}

// Generated WGSL memoised per fragment shape, tile and mode (see memoCode).
const linearCode = memoCode(linearCodeUncached);
const gateUpCode = memoCode(gateUpCodeUncached);
const downCode = memoCode(downCodeUncached);
