/**
 * Dense linear layer on the GPU: y[M, N] = x[M, K] · w[N, K]ᵀ (+ bias[N]) — the nn.Linear layout, the same result as
 * `linear` in src/backend/cpu/linear.ts. x and y are f32 tensors; w is a GpuWeight stored as f32, f16 or bf16 (read
 * through `w_at`/`w_at2` from wgsl.ts); the bias is f32; accumulation is always f32. Two code paths, chosen by M:
 *
 * GEMV (M ≤ GEMV_MAX_ROWS = 8, decode): memory-bound on the weight, so every weight element is read exactly once per
 *   call. A workgroup of 256 threads owns GEMV_COLS = 4 output columns n; the 64 threads of a column stride over
 *   row w[n, :] reading it contiguously, one pair of elements per read (`w_at2`: one u32 word for f16/bf16), and
 *   multiply each pair into all M rows of x. The kernel is generated for M rounded up to 1, 2, 4 or 8 rows (the row
 *   loop unrolled in the WGSL text into scalar accumulators; rows ≥ M are skipped by uniform branches), so at most
 *   four pipelines per weight dtype. The 64 partial sums per (row, column) are combined in workgroup memory
 *   (≤ 64·33 floats, padded so that neither the writes nor the reads conflict on banks; no subgroup operations):
 *   8·S threads (S = 4·rows slots ≤ 32) add 8 partials each, then S threads add those 8 and store with the bias:
 *   two barriers, where a 64-way tree needs six (and took seconds to JIT on lavapipe for 8 rows). A pair must start
 *   on a u32 word: with an odd K, odd rows start mid-word, so a row is split at run time into an optional leading
 *   single, whole pairs, and an optional trailing single. Grid: ceil(N / 4) workgroups, folded into a 2-D grid past 65535.
 *
 * GEMM (larger M): 64×64 output tile per workgroup of 16×16 threads; thread (tx, ty) owns the 4×4 block of rows
 *   4ty .. 4ty+3 and columns 4tx .. 4tx+3. K advances in steps of 16: each thread loads 4 consecutive k of one x row
 *   and of one w row into k-major tiles of 4-vectors (As[k][q] = x rows 4q .. 4q+3 at column k; Bs likewise for w
 *   rows; 8 KiB), zero-filling outside [0, M)×[0, K) and [0, N)×[0, K); then 16 rank-1 updates, each two vec4
 *   workgroup loads and four vec4 FMAs. Grid: (ceil(N/64), ceil(M/64)).
 *
 * Tensor cores: with an f16 weight on a device with subgroup matrices, the GEMM case goes to coop-gemm.ts instead
 *   (f16-rounded x, f32 accumulation; same bindings).
 *
 * Limits: every binding (x, w, y) must fit the device's max storage binding size (128 MiB on lavapipe; a larger
 *   weight, e.g. a big vocabulary head, must be split into row blocks by the caller — this throws); indices are u32;
 *   y must not share a buffer with x. Without a bias a shared 16-byte zero buffer is bound (one pipeline either way).
 */
import type { GpuContext, GpuTensor } from '../context.js';
import { Params } from '../context.js';
import type { GpuWeight, GpuWeightDType } from '../weights.js';
import { cdiv, weightBinding, weightReader, memoCode, grid2d, MAX_GRID_DIM, rep } from '../wgsl.js';
import { coopGemmFits, coopLinear } from './coop-gemm.js';

/** Row counts up to this use the GEMV kernel, larger ones the tiled GEMM. */
export const GEMV_MAX_ROWS = 8;

const GEMV_COLS = 4;
const GEMV_TPC = 64; // threads per output column

/** The declarations both kernels share: struct P, the bindings p, x, w, bias, y and w's readers (`w_at`, `w_at2`). */
function linearDecls(dtype: GpuWeightDType): string {
  return `struct P { M: u32, N: u32, K: u32, hasBias: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
${weightBinding(2, 'w', dtype)}
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
${weightReader('w', dtype)}`;
}

function gemvCodeUncached(dtype: GpuWeightDType, MR: number): string {
  const WG = GEMV_COLS * GEMV_TPC;
  // Row m of x only exists when m < p.M (M is rounded up to the bucket MR); the guards are uniform branches.
  const guard = (m: number, s: string): string => (m === 0 ? s : `if (${m}u < p.M) { ${s} }`);
  return `// linear GEMV: ${dtype} weight, up to ${MR} rows
const TPC = ${GEMV_TPC}u;
const NC = ${GEMV_COLS}u;
const WG = ${WG}u;
${linearDecls(dtype)}
const S = ${MR * GEMV_COLS}u;
const PAD = ${MR * GEMV_COLS + 1}u;
var<workgroup> red: array<f32, ${GEMV_TPC * (MR * GEMV_COLS + 1)}>;
var<workgroup> red2: array<f32, ${8 * (MR * GEMV_COLS + 1)}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let col = li / TPC;
  let t = li % TPC;
  let n = (wid.y * nwg.x + wid.x) * NC + col;
${rep(MR, (m) => `  var acc${m} = 0.0;`)}
  if (n < p.N) {
    let K = p.K;
    let wb = n * K;
    // For f16/bf16 a pair must start on a word: a row starting mid-word (odd K, odd n) begins with one single.
    let a = wb & 1u;
    let np = (K - a) / 2u;
    for (var j = t; j < np; j += TPC) {
      let k = a + 2u * j;
      let w0 = w_at2(wb + k);
${rep(MR, (m) => `      ${guard(m, `let x${m} = ${m}u * K + k; acc${m} += x[x${m}] * w0.x + x[x${m} + 1u] * w0.y;`)}`)}
    }
    // The single left at the start (a == 1) or at the end (K − a odd).
    var ks = K;
    if (t == 0u && a == 1u) { ks = 0u; }
    if (t == TPC - 1u && ((K - a) & 1u) == 1u) { ks = K - 1u; }
    if (ks < K) {
      let w0 = w_at(wb + ks);
${rep(MR, (m) => `      ${guard(m, `acc${m} += x[${m}u * K + ks] * w0;`)}`)}
    }
  }
  // Reduction: partial (row m, column col) of thread t sits at red[t·PAD + m·NC + col] (PAD = slots + 1 keeps
  // both access patterns free of bank conflicts); 8·S threads sum 8 partials each, then S threads sum those 8.
${rep(MR, (m) => `  red[t * PAD + ${m * GEMV_COLS}u + col] = acc${m};`)}
  workgroupBarrier();
  if (li < 8u * S) {
    let slot = li % S;
    let c = li / S;
    var v = 0.0;
    for (var q = 0u; q < 8u; q++) { v += red[(c * 8u + q) * PAD + slot]; }
    red2[c * PAD + slot] = v;
  }
  workgroupBarrier();
  if (li < S) {
    var v = 0.0;
    for (var c = 0u; c < 8u; c++) { v += red2[c * PAD + li]; }
    let m = li / NC;
    let nn = (wid.y * nwg.x + wid.x) * NC + li % NC;
    if (m < p.M && nn < p.N) {
      if (p.hasBias != 0u) { v += bias[nn]; }
      y[m * p.N + nn] = v;
    }
  }
}
`;
}

const BM = 64;
const BN = 64;
const BK = 16;

function gemmCodeUncached(dtype: GpuWeightDType): string {
  const comp = ['x', 'y', 'z', 'w'];
  return `// linear GEMM: ${dtype} weight
const BM = ${BM}u;
const BN = ${BN}u;
const BK = ${BK}u;
${linearDecls(dtype)}
// k-major tiles of 4-vectors: As[k·16 + q] = x rows m0 + 4q .. 4q+3 at column k0 + k; Bs likewise for w rows.
var<workgroup> As: array<vec4<f32>, ${(BK * BM) / 4}>;
var<workgroup> Bs: array<vec4<f32>, ${(BK * BN) / 4}>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let m0 = wid.y * BM;
  let n0 = wid.x * BN;
  let K = p.K;
  // Tile loads: thread li fills row r of the x tile and row r of the w tile at k offsets kq .. kq+3.
  let r = li / 4u;
  let kq = (li % 4u) * 4u;
  let am = m0 + r;
  let bn = n0 + r;
  let q = r / 4u;
  let c = r % 4u;
  // Thread (tx, ty) owns the 4×4 block rows m0 + 4ty + i, columns n0 + 4tx + j: acc_i holds columns j = 0..3.
${rep(4, (i) => `  var acc${i} = vec4<f32>(0.0);`)}
  for (var k0 = 0u; k0 < K; k0 += BK) {
${rep(4, (j) => `    {
      let kk = k0 + kq + ${j}u;
      var xv = 0.0;
      var wv = 0.0;
      if (am < p.M && kk < K) { xv = x[am * K + kk]; }
      if (bn < p.N && kk < K) { wv = w_at(bn * K + kk); }
      As[(kq + ${j}u) * 16u + q][c] = xv;
      Bs[(kq + ${j}u) * 16u + q][c] = wv;
    }`)}
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      let a = As[kk * 16u + lid.y];
      let b = Bs[kk * 16u + lid.x];
${rep(4, (i) => `      acc${i} += a.${comp[i]} * b;`)}
    }
    workgroupBarrier();
  }
  let n = n0 + 4u * lid.x;
  var bv = vec4<f32>(0.0);
  if (p.hasBias != 0u) {
${rep(4, (j) => `    if (n + ${j}u < p.N) { bv.${comp[j]} = bias[n + ${j}u]; }`)}
  }
${rep(4, (i) => `  {
    let m = m0 + 4u * lid.y + ${i}u;
    if (m < p.M) {
      let v = acc${i} + bv;
${rep(4, (j) => `      if (n + ${j}u < p.N) { y[m * p.N + n + ${j}u] = v.${comp[j]}; }`)}
    }
  }`)}
}
`;
}

/** A 16-byte zero buffer bound as the bias when there is none (every declared binding must be bound). */
const noBias = new WeakMap<GpuContext, GPUBuffer>();
function zeroBias(ctx: GpuContext): GPUBuffer {
  let b = noBias.get(ctx);
  if (!b) noBias.set(ctx, (b = ctx.createStatic(new Float32Array(4), 'linear.noBias')));
  return b;
}

function checkBinding(ctx: GpuContext, buf: GPUBuffer, what: string): void {
  if (buf.size > ctx.maxBinding) {
    throw new Error(`linear: ${what} is ${buf.size} bytes, over the device's max storage binding of ${ctx.maxBinding} bytes (split it into row blocks)`);
  }
}

export interface LinearOptions {
  /**
   * When an f16 or bf16 weight takes the tensor-core kernel (coop-gemm.ts): 'auto' (default) for the GEMM case
   * (M > 8), 'always' for any M (decode rows too; the f32-activation GEMV is as fast there).
   */
  tensorCores?: 'auto' | 'always';
}

/**
 * y[M, N] = x[M, K] · w[N, K]ᵀ (+ bias[N]) into `out` (a [M, N] f32 tensor, not sharing x's buffer). Returns `out`.
 */
export function linearInto(ctx: GpuContext, x: GpuTensor, M: number, K: number, w: GpuWeight, out: GpuTensor, bias?: GpuWeight, opts: LinearOptions = {}): GpuTensor {
  const N = w.shape[0]!;
  if (w.shape.length !== 2 || w.shape[1] !== K) throw new Error(`linear: ${w.name} has shape [${w.shape.join(', ')}], expected [N, ${K}]`);
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== N || bias.dtype !== 'f32')) {
    throw new Error(`linear: bias ${bias.name} is ${bias.dtype} [${bias.shape.join(', ')}], expected f32 [${N}]`);
  }
  if (x.dtype !== 'f32' || out.dtype !== 'f32') throw new Error('linear: x and out must be f32 tensors');
  if (x.buffer.size < M * K * 4) throw new Error(`linear: x holds ${x.buffer.size} bytes, needs ${M}×${K} f32`);
  if (out.buffer.size < M * N * 4) throw new Error(`linear: out holds ${out.buffer.size} bytes, needs ${M}×${N} f32`);
  if (out.buffer === x.buffer) throw new Error('linear: out must not share a buffer with x');
  checkBinding(ctx, w.buffer, `weight ${w.name}`);
  checkBinding(ctx, x.buffer, 'x');
  checkBinding(ctx, out.buffer, 'out');
  if (M === 0 || N === 0) return out;
  const b = bias ? bias.buffer : zeroBias(ctx);
  const params = new Params().u32(M).u32(N).u32(K).u32(bias ? 1 : 0);
  if ((M > GEMV_MAX_ROWS || opts.tensorCores === 'always') && coopGemmFits(ctx, K, N, w)) {
    coopLinear(ctx, x, M, K, w, b, bias !== undefined, out);
  } else if (M <= GEMV_MAX_ROWS) {
    const MR = M <= 1 ? 1 : M <= 2 ? 2 : M <= 4 ? 4 : 8;
    ctx.run(gemvCode(w.dtype, MR), params, [x, w.buffer, b, out], grid2d(cdiv(N, GEMV_COLS)));
  } else {
    const gx = cdiv(N, BN);
    const gy = cdiv(M, BM);
    if (gx > MAX_GRID_DIM || gy > MAX_GRID_DIM) throw new Error(`linear: [${M}, ${N}] output is too large for one dispatch`);
    ctx.run(gemmCode(w.dtype), params, [x, w.buffer, b, out], [gx, gy]);
  }
  return out;
}

/** y[M, N] = x[M, K] · w[N, K]ᵀ (+ bias[N]), N = w.shape[0]; a new [M, N] tensor unless `out` is given. */
export function linear(ctx: GpuContext, x: GpuTensor, M: number, K: number, w: GpuWeight, bias?: GpuWeight, out?: GpuTensor, opts: LinearOptions = {}): GpuTensor {
  return linearInto(ctx, x, M, K, w, out ?? ctx.tensor([M, w.shape[0]!]), bias, opts);
}

// Generated WGSL memoised per configuration (see memoCode).
const gemvCode = memoCode(gemvCodeUncached);
const gemmCode = memoCode(gemmCodeUncached);
