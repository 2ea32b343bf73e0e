/**
 * Tensor-core GEMMs: the dense linear layer and the two grouped expert GEMMs of the MoE layer written with Dawn's
 * subgroup matrices (`chromium-experimental-subgroup-matrix`, Vulkan's VK_KHR_cooperative_matrix), used for f16
 * weights when the device has an f16 × f16 → f32 fragment (GpuContext.subgroupMatrix). They compute the same
 * functions as matmul.ts (`linear`) and grouped-gemm.ts (gate/up with the activation fused, down) with one difference
 * in numerics, the usual mixed precision of tensor cores: the f32 activations are rounded to f16 (clamped to
 * ±65504) as they are staged, the f16 weights are used as stored, products are accumulated in f32.
 *
 * Layout: one workgroup of 4 subgroups computes a 32-row output tile (the grouped kernels' tile = one permutation
 * tile of ≤ 32 rows of one expert, exactly as grouped-gemm.ts) of `bn` columns, the subgroups in a grid of `sgm` ×
 * 4/`sgm` (CoopTile): 32 × 64 in 2 × 2 (each subgroup 16 × 32) for 8-wide fragments, 32 × 128 in 1 × 4 (each 32 × 32,
 * 2 × 2 fragments of 16 × 16) for 16-wide ones — more fragments per subgroup means fewer fragment loads per
 * multiply-accumulate. The depth K advances in steps of BK = 32:
 *   - the A tile [32][32] is staged in workgroup memory as f16 (rows gathered by token for gate/up, zero outside
 *     the tile's rows and [0, K)), row stride 40 halves (80 bytes: 16-byte aligned, and off the 64-byte bank period);
 *   - each subgroup, per k-fragment of the step, loads its left fragments from that tile and its right fragments
 *     straight from the f16 weight in storage: the weight is [N, K] row-major, i.e. the right operand (K × N) in
 *     column-major order with stride K, so no transpose is needed; then fragment multiply-accumulates.
 * The f32 results pass through one workgroup tile [32][bn], a weight at a time (gate's sums go to registers before
 * up's are stored; ≤ 18.5 KiB of workgroup memory in all), and every thread finishes a share of the outputs: bias,
 * activation (gate/up), store with bounds checks (scattered to the slot's row for down).
 *
 * Requirements (checked by `coopGemmFits`; otherwise callers keep the f32 tiled kernels): K a multiple of 8
 * (fragment loads need 16-byte aligned offsets and strides) and N a multiple of the fragment's n (no fragment
 * straddles the last column). Subgroup-matrix calls must be subgroup-uniform: the only non-workgroup-uniform values
 * they see are the subgroup id and values derived from it, so the module turns Tint's conservative workgroup-level
 * check off (`diagnostic(off, chromium.subgroup_matrix_uniformity)`).
 *
 * Tuned: not yet on hardware with tensor cores. Both tiles are tested for correctness on lavapipe's 8 × 8 × 8
 * fragments (subgroup size 8); see NOTES.md.
 */
import type { GpuContext, GpuTensor } from '../context.js';
import { Params } from '../context.js';
import type { SubgroupMatrixShape } from '../gpu.js';
import type { GpuWeight } from '../weights.js';
import { cdiv, memoCode, MAX_GRID_DIM, rep } from '../wgsl.js';
import type { MoePermutation } from './moe-permute.js';
import {
  MOE_TILE_M, groupedDownDecls, groupedDownEpilogue, groupedGateUpDecls, groupedGateUpEpilogue, groupedTileLookup, runGroupedDown,
  runGroupedGateUp, type GatedActivationSpec, type GroupedExperts, type GroupedKernel,
} from './grouped-gemm.js';

const BM = MOE_TILE_M; // 32
const BK = 32;
const AST = BK + 8;
const SUBGROUPS = 4;

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

/** Whether a [·, K] × [N, K]ᵀ product can take the tensor-core kernels on this context (f16 weights, shapes). */
export function coopGemmFits(ctx: GpuContext, K: number, N: number, ...weights: GpuWeight[]): boolean {
  const f = ctx.subgroupMatrix;
  return f !== undefined && K % 8 === 0 && N % f.n === 0 && weights.every((w) => w.dtype === 'f16');
}

interface CoopKernel {
  frag: SubgroupMatrixShape;
  tile: CoopTile;
  /** struct P and the bindings; the weights named in `weights` must be bound as array<f16>. */
  decls: string;
  /** The f16 weights multiplied by the same A tile (gate and up, or one). */
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
  const accs = W.map((w) => rep(FM, (i) => rep(FN, (j) => `  var acc_${w}_${i}_${j} = ${C}();`))).join('\n');
  const lefts = rep(FM, (i) => `        let a${i} = subgroupMatrixLoad<${L}, row_major>(&As, (rb + ${i * m}u) * AST + kk, AST);`);
  const rights = rep(FN, (j) => `        if (cb + ${j * n}u < N) {
${W.map((w) => `          let b_${w} = subgroupMatrixLoad<${R}, col_major>(&${w}, (wrow0 + cb + ${j * n}u) * K + k0 + kk, K);
${rep(FM, (i) => `          acc_${w}_${i}_${j} = subgroupMatrixMultiplyAccumulate(a${i}, b_${w}, acc_${w}_${i}_${j});`)}`).join('\n')}
        }`);
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
// tensor-core GEMM: ${m}×${n}×${k} f16 fragments, ${SUBGROUPS} subgroups of ${subgroupSize} (${sgm}×${sgn}), ${BM}×${bn} tile
${o.decls}
const BM = ${BM}u;
const BN = ${bn}u;
const BK = ${BK}u;
const AST = ${AST}u;
const WG = ${WG}u;
var<workgroup> As: array<f16, ${BM * AST}>;
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
    // A tile [BM][BK] → f16, zero outside the tile's rows and [0, K).
    for (var q = 0u; q < ${(BM * BK) / WG}u; q++) {
      let idx = li + WG * q;
      let r = idx / BK;
      let kk = idx % BK;
      var v = 0.0;
      if (r < rows && k0 + kk < K) { ${o.loadA} }
      As[r * AST + kk] = f16(clamp(v, -65504.0, 65504.0));
    }
    workgroupBarrier();
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

function linearCodeUncached(frag: SubgroupMatrixShape, tile: CoopTile): string {
  return coopCode({
    frag,
    tile,
    decls: `struct P { M: u32, N: u32, K: u32, hasBias: u32, nOut: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f16>;
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
 * y[M, N] = x[M, K] · w[N, K]ᵀ (+ bias[N]) into `out` on tensor cores (returned); w must be f16 and coopGemmFits must
 * hold. `bias` is the buffer to bind (a dummy when hasBias is false); `tile` defaults to defaultCoopTile.
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
  ctx.run(linearCode(frag, t), params, [x, w.buffer, bias, out], [gx, gy]);
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

function gateUpCodeUncached(frag: SubgroupMatrixShape, tile: CoopTile): string {
  return coopCode({
    frag,
    tile,
    decls: groupedGateUpDecls('f16', 'f16', 'x', GRID, true),
    weights: ['wg', 'wu'],
    setup: groupedSetup('ri = (p.slotBase + perm[p.orderBase + r0 + i]) / p.k;', 'p.F', 'p.D'),
    loadA: 'v = x[rowIdx[r] * K + k0 + kk];',
    epilogue: ([g, u]) => groupedGateUpEpilogue(g!, u!, 'r', 'col'),
  });
}

function downCodeUncached(frag: SubgroupMatrixShape, tile: CoopTile): string {
  return coopCode({
    frag,
    tile,
    decls: groupedDownDecls('f16', 'h', GRID, true),
    weights: ['wd'],
    setup: groupedSetup('ri = perm[p.orderBase + r0 + i];', 'p.D', 'p.F'),
    loadA: 'v = h[(r0 + r) * K + k0 + kk];',
    epilogue: ([sum]) => groupedDownEpilogue(sum!, 'rowIdx[r]', 'col'),
  });
}

/** Whether an expert set's grouped GEMMs can take the tensor-core kernels (f16 stacks, D and F multiples of 8 / n). */
export function coopExpertsFit(ctx: GpuContext, set: GroupedExperts): boolean {
  return coopGemmFits(ctx, set.D, set.F, set.gate, set.up) && coopGemmFits(ctx, set.F, set.D, set.down);
}

/** The checks both grouped entry points make, and the kernel description runGroupedGateUp / runGroupedDown take. */
function groupedKernel(ctx: GpuContext, set: GroupedExperts, pm: MoePermutation, tile: CoopTile | undefined, what: string,
  code: (frag: SubgroupMatrixShape, tile: CoopTile) => string): GroupedKernel {
  const frag = ctx.subgroupMatrix;
  if (!frag || !coopExpertsFit(ctx, set)) throw new Error(`${what}: this expert set cannot take the tensor-core path here`);
  if (pm.bm !== BM) throw new Error(`${what}: permutation built with ${pm.bm}-row tiles, expected ${BM}`);
  const t = tile ?? defaultCoopTile(frag);
  // The kernel's own P field after the grid fields: nOut, the outputs each invocation finishes.
  return { code: code(frag, t), cols: t.bn, loop: [(BM * t.bn) / (SUBGROUPS * frag.subgroupSize)] };
}

/** Gate/up of grouped-gemm.ts (same arguments, same bindings) on tensor cores. */
export function coopGateUpGpu(
  ctx: GpuContext, x: GpuTensor, pm: MoePermutation, k: number, set: GroupedExperts, act: GatedActivationSpec, h: GpuTensor, tile?: CoopTile,
): void {
  runGroupedGateUp(ctx, groupedKernel(ctx, set, pm, tile, 'coopGateUpGpu', gateUpCode), x, pm, k, set, act, h);
}

/** Down of grouped-gemm.ts on tensor cores. */
export function coopDownGpu(ctx: GpuContext, h: GpuTensor, pm: MoePermutation, set: GroupedExperts, y: GpuTensor, tile?: CoopTile): void {
  runGroupedDown(ctx, groupedKernel(ctx, set, pm, tile, 'coopDownGpu', downCode), h, pm, set, y);
}

// Generated WGSL memoised per fragment shape (see memoCode).
const linearCode = memoCode(linearCodeUncached);
const gateUpCode = memoCode(gateUpCodeUncached);
const downCode = memoCode(downCodeUncached);
