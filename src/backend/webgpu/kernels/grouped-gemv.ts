/**
 * Decode (small T·k) path of the MoE expert GEMMs: the same two products as grouped-gemm.ts, over the same
 * moe-permute.ts tiles, but with tiles of at most MOE_GEMV_TILE_M = 8 rows and the depth K split across the threads
 * of a workgroup, GEMV style (like matmul.ts's GEMV path):
 *
 *   gate/up  h[r, f] = act(x[tok(r)] · gate[e, f]ᵀ + gb[e, f], x[tok(r)] · up[e, f]ᵀ + ub[e, f])
 *   down     y[order[r], d] = h[r] · down[e, d]ᵀ + db[e, d]
 *
 * (r = sorted row of a tile of expert e, tok(r) = (slotBase + order[r]) / k; y is written at the slot's original
 * local index, exactly like groupedDownGpu, so moe-combine.ts is unchanged.)
 *
 * Why: at decode a 32-row GEMM tile holds one or two real rows, and the down projection (K = F, up to 14336) gets
 * only (experts touched × D / 64) workgroups, each looping serially over all of K — far too few loads in flight to
 * stream the weights at HBM bandwidth. Here every (tile, group of 4 output columns) is one workgroup: (tiles × N / 4)
 * workgroups, e.g. 8 × 3584 for T = 1, k = 8, F = 14336, and every weight element of a touched expert is read exactly
 * once per tile (once per call when no expert holds more than 8 of the slots).
 *
 * Workgroup layout: 256 threads = NC = 4 output columns × TPC = 64 lanes over K. The 64 lanes of a column stride
 * over its weight row reading it contiguously in pairs (`NAME_at2`: one u32 word for f16/bf16, so a warp reads 256
 * contiguous bytes), two pairs per iteration (both loaded before the FMAs, for more loads in flight), and multiply
 * each pair into every row of the tile. The tile's rows (≤ 8) are unrolled in the WGSL text into scalar accumulators
 * whose guards (`m < rows`) are branches on a per-tile value: one pipeline per weight dtype whatever the row count,
 * and no register-indexed arrays. Their input rows (x rows gathered by token for gate/up, consecutive h rows for
 * down) are read straight from global memory — they are shared by all the workgroups of a tile and stay in cache;
 * staging 8 rows of up to 14336 floats would not fit workgroup memory. A pair must start on a u32 word: with an odd
 * K, rows starting mid-word begin with one single element (lane 0) and whole pairs follow; a trailing single goes to
 * lane 63 (the scheme of matmul.ts). Accumulation is f32 for every weight dtype.
 *
 * Reduction (no subgroup operations, deterministic): partial (row m, column c) of lane t goes to
 * red[t·33 + 4m + c] (32 slots, padded to 33 against bank conflicts); all 256 threads sum 8 partials each into
 * red2, then 32 threads sum those 8 and run the epilogue (bias, activation, store). Gate and up reduce one after
 * the other through the same buffer (4 barriers) so workgroup memory stays at 10.5 KiB (one 64 × 65 buffer for
 * both would exceed WebGPU's 16 KiB default). The activation is inlined once (one output per epilogue thread),
 * and the activation kind and bias presence are uniforms, as in grouped-gemm.ts.
 *
 * Grid: the permutation's tile upper bound × ⌈N / 4⌉ in groupedTileLookup's launch order (groups of row tiles sweep
 * the column blocks together), folded into a 2-D grid; workgroups past the actual tile count (perm[0], made uniform with
 * workgroupUniformLoad) return at once — the tile count is not known on the host.
 *
 * When to use it (moe.ts): for n = T·k ≤ MOE_GEMV_MAX_SLOTS = 64 slots. Both paths read a touched expert's
 * weights once per tile, ⌈c / 8⌉ times here against ⌈c / 32⌉ in the GEMM for an expert with c rows. Up to 64 slots
 * over the usual E ≥ 8 experts, experts hold ≤ 8 rows on average, so the weight traffic is the same and this path
 * has ~16× more workgroups per tile and no serial K loop. Even in the worst case at 64 slots (all on one expert:
 * 8 reads here, 2 in the GEMM) the GEMM's few long-running 32 × 64 tiles (2 × D/64 workgroups for down) are
 * compute-latency bound and roughly break even; past that the GEMM's row reuse wins. The row loop costs one
 * uniform branch per row per pair, negligible next to the weight loads.
 *
 * Limits: indices are u32; every weight, x, h and y must fit one storage binding (moe.ts checks and chunks tokens).
 * The kernels accept any tile height ≤ 8 (a permutation built with bm ≤ MOE_GEMV_TILE_M).
 */
import { memoCode, rep } from '../wgsl.js';
import type { GpuContext, GpuTensor } from '../context.js';
import type { GpuWeightDType } from '../weights.js';
import type { MoePermutation } from './moe-permute.js';
import {
  groupedDownDecls, groupedDownEpilogue, groupedGateUpDecls, groupedGateUpEpilogue, groupedTileLookup, runGroupedDown,
  runGroupedGateUp, type GatedActivationSpec, type GroupedExperts,
} from './grouped-gemm.js';

/** Rows per tile of the GEMV path: the `bm` the permutation is built with. */
export const MOE_GEMV_TILE_M = 8;
/** moeExpertsGpu uses the GEMV path for at most this many slots (T·k) per token chunk (see the file comment). */
export const MOE_GEMV_MAX_SLOTS = 64;

const ROWS = MOE_GEMV_TILE_M;
const NC = 4; // output columns per workgroup
const TPC = 64; // lanes per column, over K
const WG = NC * TPC;
const S = ROWS * NC; // reduction slots (row, column)
const PAD = S + 1;

/** Row m of the tile exists when m < rows (row 0 always: tiles are never empty). */
const guard = (m: number, s: string): string => (m === 0 ? s : `if (${m}u < rows) { ${s} }`);

/** The statements for row m in a block (guarded as above), at the pair loops' indentation. */
const block = (m: number, lines: string[]): string =>
  `${m === 0 ? '{' : `if (${m}u < rows) {`}\n${lines.map((l) => `        ${l}`).join('\n')}\n      }`;

/**
 * The shared kernel (also moe-decode.ts's gate/up, with its own `lookup`). `wts` are the weight names (read with
 * <w>_at2 / <w>_at at the same index), `rowBase(m)` the WGSL expression of input row m's first element, `epilogue`
 * runs for row m, column nn with the sums in v_<w>.
 */
export function gemvCode(o: {
  header: string; decls: string; wts: string[]; K: string; N: string; rowBase: (m: string) => string; epilogue: string;
  /** The start of main that defines e, r0, rows and inf.z (the column block); default: the permutation's tile lookup. */
  lookup?: string;
}): string {
  const accs = o.wts.map((w) => rep(ROWS, (m) => `  var acc_${w}${m} = 0.0;`)).join('\n');
  const fma2 = (m: number): string => block(m, [`let i0 = xb${m} + ka;`, `let i1 = xb${m} + kb;`,
    ...o.wts.map((w) => `acc_${w}${m} += xin[i0] * ${w}a.x + xin[i0 + 1u] * ${w}a.y + xin[i1] * ${w}b.x + xin[i1 + 1u] * ${w}b.y;`)]);
  const fma1 = (m: number): string => block(m, [`let i0 = xb${m} + ka;`,
    ...o.wts.map((w) => `acc_${w}${m} += xin[i0] * ${w}a.x + xin[i0 + 1u] * ${w}a.y;`)]);
  const fmaS = (m: number): string => guard(m, o.wts.map((w) => `acc_${w}${m} += xin[xb${m} + ks] * ${w}s;`).join(' '));
  const reduce = o.wts.map((w) => `  // ${w}: partials to red, 8-way sums to red2_${w}.
${rep(ROWS, (m) => `  red[t * PAD + ${m * NC}u + col] = acc_${w}${m};`)}
  workgroupBarrier();
  {
    let slot = li % S;
    let c = li / S;
    var v = 0.0;
    for (var q = 0u; q < 8u; q++) { v += red[(c * 8u + q) * PAD + slot]; }
    red2_${w}[c * PAD + slot] = v;
  }
  workgroupBarrier();`).join('\n');
  return `${o.header}
const TPC = ${TPC}u;
const NC = ${NC}u;
const S = ${S}u;
const PAD = ${PAD}u;
${o.decls}
var<workgroup> info: vec4<u32>;
var<workgroup> red: array<f32, ${TPC * PAD}>;
${o.wts.map((w) => `var<workgroup> red2_${w}: array<f32, ${8 * PAD}>;`).join('\n')}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
${o.lookup ?? groupedTileLookup('nCb')}
  let K = ${o.K};
  let N = ${o.N};
  let col = li / TPC;
  let t = li % TPC;
  let n0 = inf.z * NC;
  let n = n0 + col;
  // First element of each input row of the tile (rows past the tile's end are never read).
${rep(ROWS, (m) => `  var xb${m} = 0u;\n  ${guard(m, `xb${m} = ${o.rowBase(`${m}u`)};`)}`)}
${accs}
  if (n < N) {
    let wb = (e * N + n) * K;
    // A pair starts on a word: a row starting mid-word (odd K) begins with one single element.
    let a = wb & 1u;
    let np = (K - a) / 2u;
    var j = t;
    while (j + TPC < np) {
      let ka = a + 2u * j;
      let kb = ka + 2u * TPC;
${o.wts.map((w) => `      let ${w}a = ${w}_at2(wb + ka);\n      let ${w}b = ${w}_at2(wb + kb);`).join('\n')}
${rep(ROWS, (m) => `      ${fma2(m)}`)}
      j += 2u * TPC;
    }
    if (j < np) {
      let ka = a + 2u * j;
${o.wts.map((w) => `      let ${w}a = ${w}_at2(wb + ka);`).join('\n')}
${rep(ROWS, (m) => `      ${fma1(m)}`)}
    }
    // The single left at the start (a == 1) or at the end (K − a odd).
    var ks = K;
    if (t == 0u && a == 1u) { ks = 0u; }
    if (t == TPC - 1u && ((K - a) & 1u) == 1u) { ks = K - 1u; }
    if (ks < K) {
${o.wts.map((w) => `      let ${w}s = ${w}_at(wb + ks);`).join('\n')}
${rep(ROWS, (m) => `      ${fmaS(m)}`)}
    }
  }
${reduce}
  if (li < S) {
${o.wts.map((w) => `    var v_${w} = 0.0;\n    for (var c = 0u; c < 8u; c++) { v_${w} += red2_${w}[c * PAD + li]; }`).join('\n')}
    let m = li / NC;
    let nn = n0 + li % NC;
    if (m < rows && nn < N) {
${o.epilogue}
    }
  }
}
`;
}

const GRID = 'nCb: u32, total: u32, gx: u32';

function gateUpCodeUncached(gdt: GpuWeightDType, udt: GpuWeightDType): string {
  return gemvCode({
    header: `// grouped GEMV gate/up: ${gdt} gate, ${udt} up`,
    decls: groupedGateUpDecls(gdt, udt, 'xin', GRID),
    wts: ['wg', 'wu'],
    K: 'p.D',
    N: 'p.F',
    rowBase: (m) => `((p.slotBase + perm[p.orderBase + r0 + ${m}]) / p.k) * K`,
    epilogue: groupedGateUpEpilogue('v_wg', 'v_wu', 'm', 'nn'),
  });
}

function downCodeUncached(ddt: GpuWeightDType): string {
  return gemvCode({
    header: `// grouped GEMV down: ${ddt} weight`,
    decls: groupedDownDecls(ddt, 'xin', GRID),
    wts: ['wd'],
    K: 'p.F',
    N: 'p.D',
    rowBase: (m) => `(r0 + ${m}) * K`,
    epilogue: groupedDownEpilogue('v_wd', 'perm[p.orderBase + r0 + m]', 'nn'),
  });
}

function checkPerm(pm: MoePermutation, what: string): void {
  if (!(pm.bm >= 1 && pm.bm <= MOE_GEMV_TILE_M)) {
    throw new Error(`${what}: permutation built with ${pm.bm}-row tiles, the GEMV path takes at most ${MOE_GEMV_TILE_M}`);
  }
}

/**
 * GEMV-path twin of groupedGateUpGpu: h[sorted row, F] = act(gate·x + gb, up·x + ub) for every routed slot of the
 * permutation (built with bm ≤ MOE_GEMV_TILE_M), gathering x rows [T, D] by token (slot / k). `h` must hold
 * pm.nSlots rows of F.
 */
export function groupedGateUpGemvGpu(
  ctx: GpuContext, x: GpuTensor, pm: MoePermutation, k: number, set: GroupedExperts, act: GatedActivationSpec, h: GpuTensor,
): void {
  checkPerm(pm, 'groupedGateUpGemvGpu');
  runGroupedGateUp(ctx, { code: gateUpCode(set.gate.dtype, set.up.dtype), cols: NC, loop: [] }, x, pm, k, set, act, h);
}

/**
 * GEMV-path twin of groupedDownGpu: y[slot, D] = h[sorted row] · down[e]ᵀ + db[e] at each routed slot's local index
 * (slot − slotBase). The permutation must be built with bm ≤ MOE_GEMV_TILE_M.
 */
export function groupedDownGemvGpu(ctx: GpuContext, h: GpuTensor, pm: MoePermutation, set: GroupedExperts, y: GpuTensor): void {
  checkPerm(pm, 'groupedDownGemvGpu');
  runGroupedDown(ctx, { code: downCode(set.down.dtype), cols: NC, loop: [] }, h, pm, set, y);
}

// Generated WGSL memoised per configuration (see memoCode).
const gateUpCode = memoCode(gateUpCodeUncached);
const downCode = memoCode(downCodeUncached);
