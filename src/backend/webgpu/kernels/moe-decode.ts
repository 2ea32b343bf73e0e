/**
 * The routed experts of ONE token (decode) in two dispatches instead of four: no permutation, and the down
 * projection fused with the gate-weighted combine.
 *
 *   gate/up       h[j, f] = act(x · gate[e_j, f]ᵀ + gb, x · up[e_j, f]ᵀ + ub) for each slot j < k of the token —
 *                 grouped-gemv.ts's kernel (gemvCode) with a lookup that takes slot j as a one-row tile of expert
 *                 e_j straight from the routing (k × ⌈F / 4⌉ workgroups).
 *   down+combine  out[t, d] = Σ_j g_j · (h[j] · down[e_j, d]ᵀ + db[e_j, d]) — one workgroup per 4 output columns,
 *                 64 lanes per column striding over F; each lane accumulates g_j · (its partial dot with slot j)
 *                 over all slots, one tree reduction per column at the end, then the gated biases. Slots go in
 *                 pairs (two rows' loads in flight per step: this grid has only D / 4 workgroups, k times fewer
 *                 than a per-slot GEMV, so each thread must keep more loads going).
 *
 * Why: at decode the permutation (moe-permute.ts) sorts k slots that one token's top-k already made distinct, and
 * the separate down / combine dispatches pass y through memory; each dispatch costs the host several µs through
 * Dawn (bench/gpu-host). Weight traffic is unchanged: every touched expert's rows are read once.
 *
 * Same function as moe.ts's other paths (moeExpertsGpu picks this one for one-token chunks): expert ids outside
 * [0, E) contribute nothing (their gate/up workgroups return at once, the down loop skips them; a token with no valid
 * slot gets a zero row). The sum order differs (per-lane partials weighted before the reduction), not the terms.
 * Accumulation is f32 for every weight dtype. Limits: those of grouped-gemv.ts; k ≤ 2^16.
 */
import type { GpuContext, GpuTensor } from '../context.js';
import { Params } from '../context.js';
import type { GpuWeightDType } from '../weights.js';
import { cdiv, grid2d, memoCode, weightBinding, weightReader } from '../wgsl.js';
import { groupedGateUpDecls, groupedGateUpEpilogue, runGroupedGateUp, type GatedActivationSpec, type GroupedExperts } from './grouped-gemm.js';
import type { MoePermutation } from './moe-permute.js';
import { gemvCode } from './grouped-gemv.js';

/** Output columns per workgroup (both kernels) and lanes per column of the down kernel. */
const NC = 4;
const TPC = 64;

// Slot j of the token is tile j: its expert comes from the routing (bound where the permutation usually is, as u32:
// a negative id reads as ≥ E and is skipped like any out-of-range one).
const SLOT_LOOKUP = `  if (li == 0u) {
    let lin = wid.x + wid.y * p.gx;
    let tile = lin / p.nCb;
    var ok = 0u;
    var ex = 0u;
    if (lin < p.total) { ex = perm[p.slotBase + tile]; if (ex < p.E) { ok = 1u; } }
    info = vec4<u32>(ok, tile, lin % p.nCb, ex);
  }
  let inf = workgroupUniformLoad(&info);
  if (inf.x == 0u) { return; }
  let e = inf.w;
  let r0 = inf.y;
  let rows = 1u;`;

function gateUpCodeUncached(gdt: GpuWeightDType, udt: GpuWeightDType): string {
  return gemvCode({
    header: `// one-token MoE gate/up (slots as tiles): ${gdt} gate, ${udt} up`,
    decls: groupedGateUpDecls(gdt, udt, 'xin', 'nCb: u32, total: u32, gx: u32, E: u32'),
    wts: ['wg', 'wu'],
    K: 'p.D',
    N: 'p.F',
    rowBase: (m) => `((p.slotBase + r0 + ${m}) / p.k) * K`,
    epilogue: groupedGateUpEpilogue('v_wg', 'v_wu', 'm', 'nn'),
    lookup: SLOT_LOOKUP,
  });
}

function downCombineCodeUncached(ddt: GpuWeightDType): string {
  // One slot's dot product over this lane's share of the row, two pairs per step (the scheme of grouped-gemv.ts:
  // pairs start on a u32 word, so a row starting mid-word (odd F) begins with one single element, and a trailing
  // single goes to the last lane).
  const one = `fn dotRow(wb: u32, hb: u32, K: u32, t: u32) -> f32 {
  let a = wb & 1u;
  let np = (K - a) / 2u;
  var s = 0.0;
  var q = t;
  while (q + TPC < np) {
    let ka = a + 2u * q;
    let kb = ka + 2u * TPC;
    let wa = wd_at2(wb + ka);
    let wc = wd_at2(wb + kb);
    s += h[hb + ka] * wa.x + h[hb + ka + 1u] * wa.y + h[hb + kb] * wc.x + h[hb + kb + 1u] * wc.y;
    q += 2u * TPC;
  }
  if (q < np) {
    let ka = a + 2u * q;
    let wa = wd_at2(wb + ka);
    s += h[hb + ka] * wa.x + h[hb + ka + 1u] * wa.y;
  }
  if (t == 0u && a == 1u) { s += h[hb] * wd_at(wb); }
  if (t == TPC - 1u && ((K - a) & 1u) == 1u) { s += h[hb + K - 1u] * wd_at(wb + K - 1u); }
  return s;
}`;
  // Two slots' dot products at once (even F: both rows start on a word), four weight loads in flight per step.
  const two = `fn dotRows2(wb0: u32, hb0: u32, wb1: u32, hb1: u32, K: u32, t: u32) -> vec2<f32> {
  let np = K / 2u;
  var s0 = 0.0;
  var s1 = 0.0;
  var q = t;
  while (q + TPC < np) {
    let ka = 2u * q;
    let kb = ka + 2u * TPC;
    let w0a = wd_at2(wb0 + ka);
    let w0b = wd_at2(wb0 + kb);
    let w1a = wd_at2(wb1 + ka);
    let w1b = wd_at2(wb1 + kb);
    s0 += h[hb0 + ka] * w0a.x + h[hb0 + ka + 1u] * w0a.y + h[hb0 + kb] * w0b.x + h[hb0 + kb + 1u] * w0b.y;
    s1 += h[hb1 + ka] * w1a.x + h[hb1 + ka + 1u] * w1a.y + h[hb1 + kb] * w1b.x + h[hb1 + kb + 1u] * w1b.y;
    q += 2u * TPC;
  }
  if (q < np) {
    let ka = 2u * q;
    let w0a = wd_at2(wb0 + ka);
    let w1a = wd_at2(wb1 + ka);
    s0 += h[hb0 + ka] * w0a.x + h[hb0 + ka + 1u] * w0a.y;
    s1 += h[hb1 + ka] * w1a.x + h[hb1 + ka + 1u] * w1a.y;
  }
  return vec2<f32>(s0, s1);
}`;
  return `// one-token MoE down projection fused with the gated combine: ${ddt} weight
const TPC = ${TPC}u;
const NC = ${NC}u;
struct P { D: u32, F: u32, k: u32, slotBase: u32, E: u32, hasDb: u32, gx: u32, outRow: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> h: array<f32>;
@group(0) @binding(2) var<storage, read> experts: array<u32>;
@group(0) @binding(3) var<storage, read> gates: array<f32>;
${weightBinding(4, 'wd', ddt)}
@group(0) @binding(5) var<storage, read> db: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
${weightReader('wd', ddt)}
var<workgroup> red: array<f32, ${NC * TPC}>;

${one}

${two}

@compute @workgroup_size(${NC * TPC})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let N = p.D;
  let K = p.F;
  let col = li / TPC;
  let t = li % TPC;
  let n = (wid.y * p.gx + wid.x) * NC + col;
  let sb = p.slotBase;
  var acc = 0.0;
  if (n < N) {
    // Slots in pairs: two valid slots of an even-F layer share one loop (more loads in flight); otherwise one by one.
    // Every branch depends only on the routing, the same for the whole workgroup.
    for (var j = 0u; j < p.k; j += 2u) {
      let e0 = experts[sb + j];
      var e1 = 0xffffffffu;
      if (j + 1u < p.k) { e1 = experts[sb + j + 1u]; }
      let v0 = e0 < p.E;
      let v1 = e1 < p.E;
      if (v0 && v1 && (K & 1u) == 0u) {
        let s = dotRows2((e0 * N + n) * K, j * K, (e1 * N + n) * K, (j + 1u) * K, K, t);
        acc += gates[sb + j] * s.x + gates[sb + j + 1u] * s.y;
      } else {
        if (v0) { acc += gates[sb + j] * dotRow((e0 * N + n) * K, j * K, K, t); }
        if (v1) { acc += gates[sb + j + 1u] * dotRow((e1 * N + n) * K, (j + 1u) * K, K, t); }
      }
    }
  }
  red[li] = acc;
  workgroupBarrier();
  for (var st = TPC / 2u; st > 0u; st = st >> 1u) {
    if (t < st) { red[li] += red[li + st]; }
    workgroupBarrier();
  }
  if (t == 0u && n < N) {
    var v = red[li];
    if (p.hasDb != 0u) {
      for (var j = 0u; j < p.k; j++) {
        let e = experts[sb + j];
        if (e < p.E) { v += gates[sb + j] * db[e * N + n]; }
      }
    }
    out[p.outRow * N + n] = v;
  }
}
`;
}

const gateUpCode = memoCode(gateUpCodeUncached);
const downCombineCode = memoCode(downCombineCodeUncached);

/**
 * h[j, F] for the k slots [slotBase, slotBase + k) of one token (row slotBase / k of x [T, D]); rows of slots whose
 * expert is out of range are left unwritten (nothing reads them).
 */
export function moeDecodeGateUpGpu(
  ctx: GpuContext, x: GpuTensor, experts: GpuTensor, slotBase: number, k: number, set: GroupedExperts, act: GatedActivationSpec, h: GpuTensor,
): void {
  if (slotBase % k !== 0) throw new Error(`moeDecodeGateUpGpu: slotBase ${slotBase} is not a token's first slot (k = ${k})`);
  if (h.buffer.size < k * set.F * 4) throw new Error(`moeDecodeGateUpGpu: h holds fewer than ${k}×${set.F} values`);
  // The routing stands where the permutation usually is: k tiles (the slots), no offsets, tiles or order sections
  // (SLOT_LOOKUP reads the expert ids at slotBase + tile); the kernel's own P field after gx is E.
  const slotsAsTiles: MoePermutation = { perm: experts, offBase: 0, tilesBase: 0, orderBase: 0, maxTiles: k, nSlots: k, slotBase, bm: 1 };
  runGroupedGateUp(ctx, { code: gateUpCode(set.gate.dtype, set.up.dtype), cols: NC, loop: [set.E] }, x, slotsAsTiles, k, set, act, h);
}

/** out[outRow, D] = Σ_j gates[slotBase + j] · (h[j] · down[e_j]ᵀ + db[e_j]) over the token's valid slots (overwrites). */
export function moeDecodeDownCombineGpu(
  ctx: GpuContext, h: GpuTensor, experts: GpuTensor, gates: GpuTensor, slotBase: number, k: number, set: GroupedExperts,
  out: GpuTensor, outRow: number,
): void {
  if (out.buffer.size < (outRow + 1) * set.D * 4) throw new Error(`moeDecodeDownCombineGpu: out holds fewer than ${outRow + 1} rows of ${set.D}`);
  const [gx, gy] = grid2d(cdiv(set.D, NC));
  const params = new Params().u32(set.D).u32(set.F).u32(k).u32(slotBase).u32(set.E).u32(set.downBias ? 1 : 0).u32(gx).u32(outRow);
  const dummy = set.downBias ? undefined : ctx.tensor([4]);
  ctx.run(downCombineCode(set.down.dtype), params, [h, experts, gates, set.down.buffer, set.downBias?.buffer ?? dummy!, out], [gx, gy]);
  ctx.release(dummy);
}
