/**
 * Grouped expert GEMMs of the MoE layer (the MegaBlocks / vLLM fused_moe layout), over the tiles built by
 * moe-permute.ts: each tile is up to BM = 32 consecutive sorted rows that all go to one expert e.
 *
 *   gate/up  h[r, f] = act(x[tok(r)] · gate[e, f]ᵀ + gb[e, f], x[tok(r)] · up[e, f]ᵀ + ub[e, f])
 *            (r = sorted row, tok(r) = (slotBase + order[r]) / k — the input rows are gathered while loading)
 *   down     y[order[r], d] = h[r] · down[e, d]ᵀ + db[e, d]   (written at the slot's original position)
 *
 * with act the gated activation of src/backend/cpu/activations.ts: silu(g)·u, gelu(g)·u (the same Numerical Recipes
 * erf as the CPU) or GPT-OSS's (u' + 1)·g'·σ(α·g') with g' = min(g, limit), u' = clamp(u, ±limit).
 *
 * Tiling: a workgroup of 16×16 threads computes one BM×BN = 32×64 output tile (gate/up: two of them, sharing the
 * gathered x tile). The depth K advances in steps of BK = 16. Each step stages the A tile [32][16] row-major (rows
 * padded to 17 floats against bank conflicts) and each weight tile k-major as [16][64 / 4] vec4 of columns, loaded
 * with consecutive threads along k (contiguous weight reads), zero-filled outside the tile's rows, [0, K) and
 * [0, N) — ≤ 10.2 KiB of workgroup memory. Thread (tx, ty) owns rows ty, ty + 16 and the 4 adjacent columns
 * 4tx .. 4tx + 3: per depth step 2 scalar A reads, one vec4 weight read per tile and 2 vec4 FMAs per tile, f32
 * accumulation. Weights of any storage dtype are read through `w_at` (wgsl.ts).
 *
 * The activation kind and the presence of each bias are uniform parameters, not code variants (an absent bias is a
 * 16-byte dummy binding, never read): one pipeline per weight dtype. The depth loop is unrolled 4× by hand and the
 * epilogue is one loop over the thread's 8 outputs, both bounded by uniforms (p.bk = 16, p.nOut = 8): with constant
 * bounds lavapipe's LLVM unrolls everything, inlining the activation 8 times and multiplying the compile time.
 *
 * Grid: one workgroup per (tile, BN column block), tiles × ⌈N / BN⌉ for the permutation's tile upper bound, folded
 * into a 2-D grid; a workgroup whose tile index is past the actual tile count (perm[0], read by one thread and made
 * uniform with workgroupUniformLoad) returns at once. Decode batches leave most tile rows empty: correct, not yet
 * fast.
 *
 * Limits: indices are u32; every weight and h / y must fit one storage binding (moe.ts checks and chunks tokens).
 */
import type { GpuContext, GpuTensor } from '../context.js';
import { Params } from '../context.js';
import type { GpuWeight, GpuWeightDType } from '../weights.js';
import { cdiv, weightBinding, weightReader, memoCode, grid2d } from '../wgsl.js';
import type { MoePermutation } from './moe-permute.js';

/** Rows per tile: the `bm` the permutation must be built with. */
export const MOE_TILE_M = 32;
const BN = 64;
const BK = 16;
const SK = BK + 1;
const UNROLL = 4;
const OUTS = 8;

export interface GatedActivationSpec {
  kind: 'silu' | 'gelu' | 'gpt_oss';
  /** GPT-OSS σ scale (default 1.702). */
  alpha?: number;
  /** GPT-OSS clamp (default 7). */
  limit?: number;
}

/** Runtime activation selector (p.act) of ACT_WGSL; shared with grouped-gemv.ts. */
export const ACT_CODE: Record<GatedActivationSpec['kind'], number> = { silu: 0, gelu: 1, gpt_oss: 2 };

/** WGSL `act(g, u)` (reads p.act, p.alpha, p.limit); shared with grouped-gemv.ts. */
export const ACT_WGSL = `
fn sigm(v: f32) -> f32 {
  if (v >= 0.0) { return 1.0 / (1.0 + exp(-v)); }
  let e = exp(v);
  return e / (1.0 + e);
}
// Numerical Recipes erfc-based erf (|err| < 1.2e-7), as src/backend/cpu/activations.ts.
fn erf_nr(x: f32) -> f32 {
  let z = min(abs(x), 10.0);
  let t = 1.0 / (1.0 + 0.5 * z);
  let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return select(r - 1.0, 1.0 - r, x >= 0.0);
}
// act: 0 = silu(g)·u, 1 = gelu(g)·u, 2 = GPT-OSS clamped (u + 1)·g·σ(α g).
fn act(g: f32, u: f32) -> f32 {
  if (p.act == 0u) { return g * sigm(g) * u; }
  if (p.act == 1u) { return 0.5 * g * (1.0 + erf_nr(g * 0.70710678118654752)) * u; }
  let gc = min(g, p.limit);
  let uc = clamp(u, -p.limit, p.limit);
  return (uc + 1.0) * (gc * sigm(gc * p.alpha));
}`;

// WGSL pieces shared with grouped-gemv.ts: both kernels bind the same buffers in the same order, look up their tile
// the same way and end in the same bias / activation / store epilogue; only names and the grid fields differ.

/** An f16 weight bound as array<f16> (shader-f16; the tensor-core kernels load fragments from it directly). */
function f16ArrayBinding(binding: number, name: string): string {
  return `@group(0) @binding(${binding}) var<storage, read> ${name}: array<f16>;`;
}

/**
 * Gate/up declarations: struct P (with `grid` — the kernel's grid and loop fields, comma-separated — between the
 * permutation offsets and the activation fields), the bindings p, `x` (the input rows, under that name), perm, wg,
 * wu, gb, ub, h, the two weight readers and ACT_WGSL. With `f16Arrays` the weights are bound as array<f16> and
 * have no readers (coop-gemm.ts).
 */
export function groupedGateUpDecls(gdt: GpuWeightDType, udt: GpuWeightDType, x: string, grid: string, f16Arrays = false): string {
  const wb = (b: number, nm: string, dt: GpuWeightDType): string => (f16Arrays ? f16ArrayBinding(b, nm) : weightBinding(b, nm, dt));
  const rd = (nm: string, dt: GpuWeightDType): string => (f16Arrays ? '' : weightReader(nm, dt));
  return `struct P {
  D: u32, F: u32, k: u32, slotBase: u32, tilesBase: u32, orderBase: u32, ${grid},
  act: u32, hasGb: u32, hasUb: u32, alpha: f32, limit: f32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> ${x}: array<f32>;
@group(0) @binding(2) var<storage, read> perm: array<u32>;
${wb(3, 'wg', gdt)}
${wb(4, 'wu', udt)}
@group(0) @binding(5) var<storage, read> gb: array<f32>;
@group(0) @binding(6) var<storage, read> ub: array<f32>;
@group(0) @binding(7) var<storage, read_write> h: array<f32>;
${rd('wg', gdt)}
${rd('wu', udt)}
${ACT_WGSL}`;
}

/** Down declarations: struct P (`grid` as in groupedGateUpDecls, then hasDb), the bindings p, `x`, perm, wd, db, y, the reader. */
export function groupedDownDecls(ddt: GpuWeightDType, x: string, grid: string, f16Arrays = false): string {
  return `struct P { D: u32, F: u32, tilesBase: u32, orderBase: u32, ${grid}, hasDb: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> ${x}: array<f32>;
@group(0) @binding(2) var<storage, read> perm: array<u32>;
${f16Arrays ? f16ArrayBinding(3, 'wd') : weightBinding(3, 'wd', ddt)}
@group(0) @binding(4) var<storage, read> db: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
${f16Arrays ? '' : weightReader('wd', ddt)}`;
}

/** Row tiles per launch group of groupedTileLookup's order. */
const LAUNCH_GROUP = 16;

/**
 * The start of main: linear workgroup index → (tile, column block of the p.<nb> blocks per tile), made uniform
 * through `info` (past the grid or the actual tile count perm[0]: return), then the tile's expert e, first sorted
 * row r0 and row count rows.
 *
 * Launch order (workgroups start roughly in linear order): groups of ${LAUNCH_GROUP} consecutive row tiles sweep the
 * column blocks together — within a group, tile fastest, then column block. A column block of an expert's weights
 * is then read from memory about once per group instead of once per tile, and the group's input rows stay in L2
 * across the column blocks (at T = 4096, Mixtral's 117 MB experts would otherwise be re-read by each of their ~32
 * row tiles; the swizzle of Triton's matmul tutorial). Any order computes the same result; this one is not yet
 * measured on a GPU with HBM (NOTES.md).
 */
export function groupedTileLookup(nb: string): string {
  return `  if (li == 0u) {
    let lin = wid.x + wid.y * p.gx;
    var ok = 0u;
    var tile = 0u;
    var cb = 0u;
    if (lin < p.total) {
      let nbk = p.${nb};
      let span = ${LAUNCH_GROUP}u * nbk;
      let first = (lin / span) * ${LAUNCH_GROUP}u;
      let gs = min(${LAUNCH_GROUP}u, p.total / nbk - first);
      let within = lin % span;
      tile = first + within % gs;
      cb = within / gs;
      if (tile < perm[0]) { ok = 1u; }
    }
    info = vec4<u32>(ok, tile, cb, 0u);
  }
  let inf = workgroupUniformLoad(&info);
  if (inf.x == 0u) { return; }
  let tb = p.tilesBase + 3u * inf.y;
  let e = perm[tb];
  let r0 = perm[tb + 1u];
  let rows = perm[tb + 2u] - r0;`;
}

/** Gate/up epilogue for tile row `row`, column `col`, with the dot products in `g` and `u`: biases, act, store to h. */
export function groupedGateUpEpilogue(g: string, u: string, row: string, col: string): string {
  return `      var g = ${g};
      var u = ${u};
      if (p.hasGb != 0u) { g += gb[e * N + ${col}]; }
      if (p.hasUb != 0u) { u += ub[e * N + ${col}]; }
      h[(r0 + ${row}) * N + ${col}] = act(g, u);`;
}

/** Down epilogue for column `col` with the dot product in `v`: bias, store to y row `dstRow` (the slot's index). */
export function groupedDownEpilogue(v: string, dstRow: string, col: string): string {
  return `      var v = ${v};
      if (p.hasDb != 0u) { v += db[e * N + ${col}]; }
      y[${dstRow} * N + ${col}] = v;`;
}

/**
 * The shared kernel: tile lookup (made uniform), the K loop staging the A tile (`loadA` sets v for row r, depth kk)
 * and the weight tiles (`loadW` sets w_<tile> for output column col, depth kk, weight index wi), the FMAs into vec4
 * accumulators acc_<tile>0 / acc_<tile>1, then `epilogue` for row r, column col with the sums in val_<tile>.
 */
function gemmCode(o: {
  decls: string; wtiles: string[]; K: string; N: string; rowsPrologue: string; loadA: string; loadW: string; epilogue: string;
}): string {
  const C4 = BN / 4;
  const tiles = o.wtiles.map((w) => `var<workgroup> ${w}s: array<vec4<f32>, ${BK * C4}>;`).join('\n');
  const accs = o.wtiles.map((w) => `  var acc_${w}0 = vec4<f32>(0.0);\n  var acc_${w}1 = vec4<f32>(0.0);`).join('\n');
  const wvals = o.wtiles.map((w) => `      var w_${w} = 0.0;`).join('\n');
  const wstores = o.wtiles.map((w) => `      ${w}s[kk * ${C4}u + c / 4u][c % 4u] = w_${w};`).join('\n');
  const fmas = Array.from({ length: UNROLL }, (_, u) => `      let a0_${u} = xs[ty * SK + kk + ${u}u];
      let a1_${u} = xs[(ty + 16u) * SK + kk + ${u}u];
${o.wtiles.map((w) => `      let b_${w}_${u} = ${w}s[(kk + ${u}u) * ${C4}u + tx];
      acc_${w}0 += a0_${u} * b_${w}_${u};
      acc_${w}1 += a1_${u} * b_${w}_${u};`).join('\n')}`).join('\n');
  const vals = o.wtiles.map((w) => `        let val_${w} = select(acc_${w}0, acc_${w}1, i == 1u)[c];`).join('\n');
  return `${o.decls}
const BM = ${MOE_TILE_M}u;
const BN = ${BN}u;
const BK = ${BK}u;
const SK = ${SK}u;
var<workgroup> xs: array<f32, ${MOE_TILE_M * SK}>;
${tiles}
var<workgroup> rowIdx: array<u32, ${MOE_TILE_M}>;
var<workgroup> info: vec4<u32>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
${groupedTileLookup('nNb')}
  let n0 = inf.z * BN;
  let K = ${o.K};
  let N = ${o.N};
  if (li < BM) {
    var ri = 0u;
    if (li < rows) { ${o.rowsPrologue} }
    rowIdx[li] = ri;
  }
  workgroupBarrier();
  let tx = lid.x;
  let ty = lid.y;
${accs}
  for (var k0 = 0u; k0 < K; k0 += BK) {
    // A tile [BM][BK]: 512 values, 2 per thread, consecutive threads along k.
    for (var q = 0u; q < 2u; q++) {
      let idx = li + 256u * q;
      let r = idx / BK;
      let kk = idx % BK;
      var v = 0.0;
      if (r < rows && k0 + kk < K) { ${o.loadA} }
      xs[r * SK + kk] = v;
    }
    // Weight tiles, k-major [BK][BN / 4] vec4: 1024 values each, 4 per thread, consecutive threads along k.
    for (var q = 0u; q < 4u; q++) {
      let idx = li + 256u * q;
      let c = idx / BK;
      let kk = idx % BK;
      let col = n0 + c;
      let wi = (e * N + col) * K + k0 + kk;
${wvals}
      if (col < N && k0 + kk < K) {
${o.loadW}
      }
${wstores}
    }
    workgroupBarrier();
    for (var kk = 0u; kk < p.bk; kk += ${UNROLL}u) {
${fmas}
    }
    workgroupBarrier();
  }
  for (var m = 0u; m < p.nOut; m++) {
    let i = m / 4u;
    let c = m % 4u;
    let r = ty + 16u * i;
    let col = n0 + 4u * tx + c;
    if (r < rows && col < N) {
${vals}
${o.epilogue}
    }
  }
}`;
}

const GRID = 'nNb: u32, total: u32, gx: u32, bk: u32, nOut: u32';

function gateUpCodeUncached(gdt: GpuWeightDType, udt: GpuWeightDType): string {
  return gemmCode({
    decls: groupedGateUpDecls(gdt, udt, 'x', GRID),
    wtiles: ['g', 'u'],
    K: 'p.D',
    N: 'p.F',
    rowsPrologue: 'ri = (p.slotBase + perm[p.orderBase + r0 + li]) / p.k;',
    loadA: 'v = x[rowIdx[r] * K + k0 + kk];',
    loadW: `        w_g = wg_at(wi);
        w_u = wu_at(wi);`,
    epilogue: groupedGateUpEpilogue('val_g', 'val_u', 'r', 'col'),
  });
}

function downCodeUncached(ddt: GpuWeightDType): string {
  return gemmCode({
    decls: groupedDownDecls(ddt, 'h', GRID),
    wtiles: ['d'],
    K: 'p.F',
    N: 'p.D',
    rowsPrologue: 'ri = perm[p.orderBase + r0 + li];',
    loadA: 'v = h[(r0 + r) * K + k0 + kk];',
    loadW: '        w_d = wd_at(wi);',
    epilogue: groupedDownEpilogue('val_d', 'rowIdx[r]', 'col'),
  });
}

/** One layer's routed experts, stacked: E gated FFNs of width F over D (uploadStacked). */
export interface GroupedExperts {
  E: number;
  D: number;
  F: number;
  /** [E, F, D] */
  gate: GpuWeight;
  /** [E, F, D] */
  up: GpuWeight;
  /** [E, D, F] */
  down: GpuWeight;
  /** f32 [E, F] */
  gateBias?: GpuWeight;
  /** f32 [E, F] */
  upBias?: GpuWeight;
  /** f32 [E, D] */
  downBias?: GpuWeight;
}

/**
 * A grouped kernel as its dispatchers see it (shared with grouped-gemv.ts): the WGSL `code`, the output columns
 * `cols` of one workgroup (the grid is one workgroup per tile × block of cols columns, folded by grid2d) and the
 * values of the kernel's own u32 fields of P after gx (`loop`).
 */
export interface GroupedKernel { code: string; cols: number; loop: number[] }

/** Records a gate/up kernel built on groupedGateUpDecls; absent biases are bound to one 16-byte dummy. */
export function runGroupedGateUp(
  ctx: GpuContext, kernel: GroupedKernel, x: GpuTensor, pm: MoePermutation, k: number, set: GroupedExperts, act: GatedActivationSpec,
  h: GpuTensor,
): void {
  const nb = cdiv(set.F, kernel.cols);
  const total = pm.maxTiles * nb;
  const [gx, gy] = grid2d(total);
  const params = new Params().u32(set.D).u32(set.F).u32(k).u32(pm.slotBase).u32(pm.tilesBase).u32(pm.orderBase)
    .u32(nb).u32(total).u32(gx);
  for (const v of kernel.loop) params.u32(v);
  params.u32(ACT_CODE[act.kind]).u32(set.gateBias ? 1 : 0).u32(set.upBias ? 1 : 0).f32(act.alpha ?? 1.702).f32(act.limit ?? 7.0);
  const dummy = set.gateBias && set.upBias ? undefined : ctx.tensor([4]);
  const gb = set.gateBias?.buffer ?? dummy!;
  const ub = set.upBias?.buffer ?? dummy!;
  ctx.run(kernel.code, params, [x, pm.perm, set.gate.buffer, set.up.buffer, gb, ub, h], [gx, gy]);
  ctx.release(dummy);
}

/** Records a down kernel built on groupedDownDecls; an absent bias is bound to a 16-byte dummy. */
export function runGroupedDown(ctx: GpuContext, kernel: GroupedKernel, h: GpuTensor, pm: MoePermutation, set: GroupedExperts, y: GpuTensor): void {
  const nb = cdiv(set.D, kernel.cols);
  const total = pm.maxTiles * nb;
  const [gx, gy] = grid2d(total);
  const params = new Params().u32(set.D).u32(set.F).u32(pm.tilesBase).u32(pm.orderBase).u32(nb).u32(total).u32(gx);
  for (const v of kernel.loop) params.u32(v);
  params.u32(set.downBias ? 1 : 0);
  const dummy = set.downBias ? undefined : ctx.tensor([4]);
  ctx.run(kernel.code, params, [h, pm.perm, set.down.buffer, set.downBias?.buffer ?? dummy!, y], [gx, gy]);
  ctx.release(dummy);
}

/**
 * h[sorted row, F] = act(gate·x + gb, up·x + ub) for every routed slot of the permutation, gathering x rows
 * [T, D] by token (slot / k). `h` must hold pm.nSlots rows of F.
 */
export function groupedGateUpGpu(
  ctx: GpuContext, x: GpuTensor, pm: MoePermutation, k: number, set: GroupedExperts, act: GatedActivationSpec, h: GpuTensor,
): void {
  if (pm.bm !== MOE_TILE_M) throw new Error(`groupedGateUpGpu: permutation built with ${pm.bm}-row tiles, expected ${MOE_TILE_M}`);
  runGroupedGateUp(ctx, { code: gateUpCode(set.gate.dtype, set.up.dtype), cols: BN, loop: [BK, OUTS] }, x, pm, k, set, act, h);
}

/** y[slot, D] = h[sorted row] · down[e]ᵀ + db[e] at each routed slot's local index (slot − slotBase). */
export function groupedDownGpu(ctx: GpuContext, h: GpuTensor, pm: MoePermutation, set: GroupedExperts, y: GpuTensor): void {
  if (pm.bm !== MOE_TILE_M) throw new Error(`groupedDownGpu: permutation built with ${pm.bm}-row tiles, expected ${MOE_TILE_M}`);
  runGroupedDown(ctx, { code: downCode(set.down.dtype), cols: BN, loop: [BK, OUTS] }, h, pm, set, y);
}

// Generated WGSL memoised per configuration (see memoCode).
const gateUpCode = memoCode(gateUpCodeUncached);
const downCode = memoCode(downCodeUncached);
