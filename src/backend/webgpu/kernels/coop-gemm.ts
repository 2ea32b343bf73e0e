/**
 * Tensor-core GEMMs: the dense linear layer and the two grouped expert GEMMs of the MoE layer written with Dawn's
 * subgroup matrices (`chromium-experimental-subgroup-matrix`, Vulkan's VK_KHR_cooperative_matrix), used for f16
 * weights when the device has an f16 × f16 → f32 fragment (GpuContext.subgroupMatrix). They compute the same
 * functions as matmul.ts (`linear`) and grouped-gemm.ts (gate/up with the activation fused, down) with one difference
 * in numerics, the usual mixed precision of tensor cores: the f32 activations are rounded to f16 (clamped to
 * ±65504) as they are staged, the f16 weights are used as stored, products are accumulated in f32.
 *
 * Layout: one workgroup of 4 subgroups computes a BM × BN = 32 × 64 output tile (the grouped kernels' tile = one
 * permutation tile of ≤ 32 rows of one expert, exactly as grouped-gemm.ts). Subgroup s owns the 16 × 32 quarter at
 * rows 16·(s / 2), columns 32·(s % 2), i.e. (16 / m) × (32 / n) result fragments of the adapter's m × n (8 or 16).
 * The depth K advances in steps of BK = 32:
 *   - the A tile [32][32] is staged in workgroup memory as f16 (rows gathered by token for gate/up, zero outside
 *     the tile's rows and [0, K)), row stride 40 halves (80 bytes: 16-byte aligned, and off the 64-byte bank period);
 *   - each subgroup, per k-fragment of the step, loads its left fragments from that tile and its right fragments
 *     straight from the f16 weight in storage: the weight is [N, K] row-major, i.e. the right operand (K × N) in
 *     column-major order with stride K, so no transpose is needed; then fragment multiply-accumulates.
 * The f32 results are stored to a workgroup tile ([32][64] per weight), and every thread finishes a share of it:
 * bias, activation (gate/up), store with bounds checks (scattered to the slot's row for down).
 *
 * Requirements (checked by `coopGemmFits`; otherwise callers keep the f32 tiled kernels): K a multiple of 8
 * (fragment loads need 16-byte aligned offsets and strides) and N a multiple of the fragment's n (no fragment
 * straddles the last column). Subgroup-matrix calls must be subgroup-uniform: the only non-workgroup-uniform values
 * they see are the subgroup id and values derived from it, so the module turns Tint's conservative workgroup-level
 * check off (`diagnostic(off, chromium.subgroup_matrix_uniformity)`).
 *
 * Tuned: not yet on hardware with tensor cores (tested for correctness on lavapipe's 8 × 8 × 8 fragments, subgroup
 * size 8); see NOTES.md.
 */
import type { GpuContext, GpuTensor } from '../context.js';
import { Params } from '../context.js';
import type { SubgroupMatrixShape } from '../gpu.js';
import type { GpuWeight } from '../weights.js';
import { cdiv, memoCode, grid2d, MAX_GRID_DIM } from '../wgsl.js';
import type { MoePermutation } from './moe-permute.js';
import {
  ACT_CODE, MOE_TILE_M, groupedDownDecls, groupedDownEpilogue, groupedGateUpDecls, groupedGateUpEpilogue, groupedTileLookup,
  type GatedActivationSpec, type GroupedExperts,
} from './grouped-gemm.js';

const BM = MOE_TILE_M; // 32
const BN = 64;
const BK = 32;
const AST = BK + 8;
const SUBGROUPS = 4;

/** Whether a [·, K] × [N, K]ᵀ product can take the tensor-core kernels on this context (f16 weights, shapes). */
export function coopGemmFits(ctx: GpuContext, K: number, N: number, ...weights: GpuWeight[]): boolean {
  const f = ctx.subgroupMatrix;
  return f !== undefined && K % 8 === 0 && N % f.n === 0 && weights.every((w) => w.dtype === 'f16');
}

interface CoopKernel {
  frag: SubgroupMatrixShape;
  /** struct P and the bindings; the weights named in `weights` must be bound as array<f16>. */
  decls: string;
  /** The f16 weights multiplied by the same A tile (gate and up, or one). */
  weights: string[];
  /** Code at the top of main that defines rows, n0, K, N and wrow0 (weight row of output column 0), then barriers. */
  setup: string;
  /** Sets `v` (f32) to A[row r][depth k] for r < rows, k < K. */
  loadA: string;
  /** Finishes the output at tile row r, column col (< N) with the sums in C_<weight>[idx]. */
  epilogue: string;
}

/** `f(i)` for i in [0, n), joined by newlines. */
function rep(n: number, f: (i: number) => string): string {
  return Array.from({ length: n }, (_, i) => f(i)).join('\n');
}

function coopCode(o: CoopKernel): string {
  const { m, n, k, subgroupSize } = o.frag;
  const WG = SUBGROUPS * subgroupSize;
  const FM = BM / 2 / m;
  const FN = BN / 2 / n;
  const L = `subgroup_matrix_left<f16, ${k}, ${m}>`;
  const R = `subgroup_matrix_right<f16, ${n}, ${k}>`;
  const C = `subgroup_matrix_result<f32, ${n}, ${m}>`;
  const accs = o.weights.map((w) => rep(FM, (i) => rep(FN, (j) => `  var acc_${w}_${i}_${j} = ${C}();`))).join('\n');
  const lefts = rep(FM, (i) => `        let a${i} = subgroupMatrixLoad<${L}, row_major>(&As, (sm * 16u + ${i * m}u) * AST + kk, AST);`);
  const rights = rep(FN, (j) => `        if (cb + ${j * n}u < N) {
${o.weights.map((w) => `          let b_${w} = subgroupMatrixLoad<${R}, col_major>(&${w}, (wrow0 + cb + ${j * n}u) * K + k0 + kk, K);
${rep(FM, (i) => `          acc_${w}_${i}_${j} = subgroupMatrixMultiplyAccumulate(a${i}, b_${w}, acc_${w}_${i}_${j});`)}`).join('\n')}
        }`);
  const stores = o.weights.map((w) => rep(FM, (i) => rep(FN, (j) =>
    `  subgroupMatrixStore<row_major>(&C_${w}, (sm * 16u + ${i * m}u) * BN + sn * 32u + ${j * n}u, acc_${w}_${i}_${j}, BN);`))).join('\n');
  return `enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium.subgroup_matrix_uniformity);
// tensor-core GEMM: ${m}×${n}×${k} f16 fragments, ${SUBGROUPS} subgroups of ${subgroupSize}
${o.decls}
const BM = ${BM}u;
const BN = ${BN}u;
const BK = ${BK}u;
const AST = ${AST}u;
const WG = ${WG}u;
var<workgroup> As: array<f16, ${BM * AST}>;
${o.weights.map((w) => `var<workgroup> C_${w}: array<f32, ${BM * BN}>;`).join('\n')}
var<workgroup> rowIdx: array<u32, ${BM}>;
var<workgroup> info: vec4<u32>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32, @builtin(subgroup_id) sgid: u32) {
${o.setup}
  let sm = sgid / 2u;
  let sn = sgid % 2u;
  // First output column of this subgroup's quarter (relative to the tile), and the fragments' accumulators.
  let cb = n0 + sn * 32u;
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
${stores}
  workgroupBarrier();
  for (var q = 0u; q < p.nOut; q++) {
    let idx = li + WG * q;
    let r = idx / BN;
    let col = n0 + idx % BN;
    if (r < rows && col < N) {
${o.epilogue}
    }
  }
}
`;
}

// ------------------------------------------------------------------ dense linear

function linearCodeUncached(frag: SubgroupMatrixShape): string {
  return coopCode({
    frag,
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
    epilogue: `      var v = C_w[idx];
      if (p.hasBias != 0u) { v += bias[col]; }
      y[(m0 + r) * N + col] = v;`,
  });
}

/**
 * y[M, N] = x[M, K] · w[N, K]ᵀ (+ bias[N]) on tensor cores; w must be f16 and coopGemmFits must hold. `bias` is the
 * buffer to bind (a dummy when hasBias is false).
 */
export function coopLinear(ctx: GpuContext, x: GpuTensor, M: number, K: number, w: GpuWeight, bias: GPUBuffer, hasBias: boolean, out: GpuTensor): void {
  const frag = ctx.subgroupMatrix;
  const N = w.shape[0]!;
  if (!frag || !coopGemmFits(ctx, K, N, w)) throw new Error(`coopLinear: ${w.name} (${w.dtype} [${w.shape}]) cannot take the tensor-core path here`);
  const gx = cdiv(N, BN);
  const gy = cdiv(M, BM);
  if (gx > MAX_GRID_DIM || gy > MAX_GRID_DIM) throw new Error(`linear: [${M}, ${N}] output is too large for one dispatch`);
  const WG = SUBGROUPS * frag.subgroupSize;
  const params = new Params().u32(M).u32(N).u32(K).u32(hasBias ? 1 : 0).u32((BM * BN) / WG);
  ctx.run(linearCode(frag), params, [x, w.buffer, bias, out], [gx, gy]);
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

function gateUpCodeUncached(frag: SubgroupMatrixShape): string {
  return coopCode({
    frag,
    decls: groupedGateUpDecls('f16', 'f16', 'x', GRID, true),
    weights: ['wg', 'wu'],
    setup: groupedSetup('ri = (p.slotBase + perm[p.orderBase + r0 + i]) / p.k;', 'p.F', 'p.D'),
    loadA: 'v = x[rowIdx[r] * K + k0 + kk];',
    epilogue: groupedGateUpEpilogue('C_wg[idx]', 'C_wu[idx]', 'r', 'col'),
  });
}

function downCodeUncached(frag: SubgroupMatrixShape): string {
  return coopCode({
    frag,
    decls: groupedDownDecls('f16', 'h', GRID, true),
    weights: ['wd'],
    setup: groupedSetup('ri = perm[p.orderBase + r0 + i];', 'p.D', 'p.F'),
    loadA: 'v = h[(r0 + r) * K + k0 + kk];',
    epilogue: groupedDownEpilogue('C_wd[idx]', 'rowIdx[r]', 'col'),
  });
}

/** Whether an expert set's grouped GEMMs can take the tensor-core kernels (f16 stacks, D and F multiples of 8 / n). */
export function coopExpertsFit(ctx: GpuContext, set: GroupedExperts): boolean {
  return coopGemmFits(ctx, set.D, set.F, set.gate, set.up) && coopGemmFits(ctx, set.F, set.D, set.down);
}

/** Gate/up of grouped-gemm.ts (same arguments, same bindings) on tensor cores. */
export function coopGateUpGpu(
  ctx: GpuContext, x: GpuTensor, pm: MoePermutation, k: number, set: GroupedExperts, act: GatedActivationSpec, h: GpuTensor,
): void {
  const frag = ctx.subgroupMatrix;
  if (!frag || !coopExpertsFit(ctx, set)) throw new Error('coopGateUpGpu: this expert set cannot take the tensor-core path here');
  if (pm.bm !== BM) throw new Error(`coopGateUpGpu: permutation built with ${pm.bm}-row tiles, expected ${BM}`);
  const nb = cdiv(set.F, BN);
  const total = pm.maxTiles * nb;
  const [gx, gy] = grid2d(total);
  const params = new Params().u32(set.D).u32(set.F).u32(k).u32(pm.slotBase).u32(pm.tilesBase).u32(pm.orderBase)
    .u32(nb).u32(total).u32(gx).u32((BM * BN) / (SUBGROUPS * frag.subgroupSize))
    .u32(ACT_CODE[act.kind]).u32(set.gateBias ? 1 : 0).u32(set.upBias ? 1 : 0).f32(act.alpha ?? 1.702).f32(act.limit ?? 7.0);
  const dummy = set.gateBias && set.upBias ? undefined : ctx.tensor([4]);
  ctx.run(gateUpCode(frag), params, [x, pm.perm, set.gate.buffer, set.up.buffer, set.gateBias?.buffer ?? dummy!, set.upBias?.buffer ?? dummy!, h], [gx, gy]);
  ctx.release(dummy);
}

/** Down of grouped-gemm.ts on tensor cores. */
export function coopDownGpu(ctx: GpuContext, h: GpuTensor, pm: MoePermutation, set: GroupedExperts, y: GpuTensor): void {
  const frag = ctx.subgroupMatrix;
  if (!frag || !coopExpertsFit(ctx, set)) throw new Error('coopDownGpu: this expert set cannot take the tensor-core path here');
  if (pm.bm !== BM) throw new Error(`coopDownGpu: permutation built with ${pm.bm}-row tiles, expected ${BM}`);
  const nb = cdiv(set.D, BN);
  const total = pm.maxTiles * nb;
  const [gx, gy] = grid2d(total);
  const params = new Params().u32(set.D).u32(set.F).u32(pm.tilesBase).u32(pm.orderBase).u32(nb).u32(total).u32(gx)
    .u32((BM * BN) / (SUBGROUPS * frag.subgroupSize)).u32(set.downBias ? 1 : 0);
  const dummy = set.downBias ? undefined : ctx.tensor([4]);
  ctx.run(downCode(frag), params, [h, pm.perm, set.down.buffer, set.downBias?.buffer ?? dummy!, y], [gx, gy]);
  ctx.release(dummy);
}

// Generated WGSL memoised per fragment shape (see memoCode).
const linearCode = memoCode(linearCodeUncached);
const gateUpCode = memoCode(gateUpCodeUncached);
const downCode = memoCode(downCodeUncached);
