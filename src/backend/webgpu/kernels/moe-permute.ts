/**
 * MoE permutation on the GPU (the MegaBlocks / vLLM `moe_align_block_size` step): sort the token slots of a routing
 * by expert, stably, and cut each expert's group of rows into tiles of BM rows for the grouped GEMMs — in three
 * dispatches, with no host readback of the counts.
 *
 *   1. rank     one workgroup of 256 threads per block of 256 slots. The block's expert ids go to workgroup memory;
 *               each slot's rank = how many earlier slots of the block chose the same expert (a 256-step scan of
 *               workgroup memory per thread); the last slot of each expert in the block writes the block's count
 *               for that expert into blockCounts[block, e] (zeroed first by the same workgroup, ordered by a
 *               storage barrier).
 *   2. scan     one workgroup of 256 threads; thread i owns a contiguous range of ⌈E/256⌉ experts. For each of its
 *               experts it turns blockCounts[·, e] into an exclusive prefix over blocks (in place) and totals the
 *               expert's count; a workgroup scan over the 256 partial sums gives every expert's first row
 *               (offsets, exclusive prefix over experts) and first tile; the thread then writes its experts' tiles
 *               (expert, first row, end row) — ⌈count / BM⌉ per expert, in expert order. Thread 255 writes the tile
 *               count and the number of routed slots.
 *   3. scatter  one thread per slot: order[offsets[e] + blockPrefix[block, e] + rank] = slot.
 *
 * The result is deterministic: within an expert, slots stay in slot order (t·k + j), exactly like
 * src/moe/dispatch.ts. Slots whose expert id is outside [0, E) (zero-computation experts, or garbage) are left out of
 * the order and of every count; whoever consumes the slots must skip them too (moeCombineGpu does).
 *
 * The tile count is at most ⌈n / BM⌉ + min(E, n) and at most n (every tile has a row), so callers dispatch that
 * many workgroups and let the ones past the actual count (`perm[0]`) exit.
 *
 * Output: one u32 tensor `perm`:
 *   perm[0] = tiles used, perm[1] = routed slots (ids in range),
 *   perm[offBase + e] = first sorted row of expert e (e = 0..E; perm[offBase + E] = routed slots),
 *   perm[tilesBase + 3·i + {0, 1, 2}] = (expert, first sorted row, end sorted row) of tile i,
 *   perm[orderBase + r] = local slot index (0..n−1, relative to slotBase) of sorted row r.
 *
 * Limits: slot indices and buffer indices are u32; the scratch holds n + ⌈n/256⌉·E u32 and must fit one binding.
 */
import type { GpuContext, GpuTensor } from '../context.js';
import { Params } from '../context.js';
import { cdiv, grid2d } from '../wgsl.js';

const BLOCK = 256;

export interface MoePermutation {
  /** The u32 tensor described in the file comment (the caller releases it). */
  readonly perm: GpuTensor;
  readonly offBase: number;
  readonly tilesBase: number;
  readonly orderBase: number;
  /** Upper bound on the tile count (dispatch this many tiles). */
  readonly maxTiles: number;
  /** Slots permuted (n = tokens · k), counted from `slotBase` of the routing. */
  readonly nSlots: number;
  readonly slotBase: number;
  /** Rows per tile. */
  readonly bm: number;
}

const RANK_WGSL = `
struct P { n: u32, E: u32, slotBase: u32, gx: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> experts: array<i32>;
@group(0) @binding(2) var<storage, read_write> work: array<u32>;
var<workgroup> ex: array<u32, ${BLOCK}>;

@compute @workgroup_size(${BLOCK})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let b = wid.x + wid.y * p.gx;
  let nb = (p.n + ${BLOCK - 1}u) / ${BLOCK}u;
  if (b >= nb) { return; }
  let s = b * ${BLOCK}u + li;
  var e = 0xffffffffu;
  if (s < p.n) {
    let v = experts[p.slotBase + s];
    if (v >= 0 && u32(v) < p.E) { e = u32(v); }
  }
  ex[li] = e;
  let cb = p.n + b * p.E;
  for (var q = li; q < p.E; q += ${BLOCK}u) { work[cb + q] = 0u; }
  workgroupBarrier();
  storageBarrier();
  if (e != 0xffffffffu) {
    var r = 0u;
    var last = true;
    for (var j = 0u; j < ${BLOCK}u; j++) {
      if (ex[j] == e) {
        if (j < li) { r++; } else if (j > li) { last = false; }
      }
    }
    work[s] = r;
    if (last) { work[cb + e] = r + 1u; }
  }
}`;

const SCAN_WGSL = `
struct P { n: u32, E: u32, nb: u32, bm: u32, offBase: u32, tilesBase: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> work: array<u32>;
@group(0) @binding(2) var<storage, read_write> perm: array<u32>;
var<workgroup> part: array<u32, ${BLOCK}>;
var<workgroup> tpart: array<u32, ${BLOCK}>;

@compute @workgroup_size(${BLOCK})
fn main(@builtin(local_invocation_index) li: u32) {
  let per = (p.E + ${BLOCK - 1}u) / ${BLOCK}u;
  let e0 = min(p.E, li * per);
  let e1 = min(p.E, e0 + per);
  var c = 0u;
  var nt = 0u;
  for (var e = e0; e < e1; e++) {
    var run = 0u;
    for (var b = 0u; b < p.nb; b++) {
      let i = p.n + b * p.E + e;
      let v = work[i];
      work[i] = run;
      run += v;
    }
    perm[p.offBase + e] = run;
    c += run;
    nt += (run + p.bm - 1u) / p.bm;
  }
  part[li] = c;
  tpart[li] = nt;
  for (var s = 1u; s < ${BLOCK}u; s <<= 1u) {
    workgroupBarrier();
    var a = part[li];
    var t2 = tpart[li];
    if (li >= s) { a += part[li - s]; t2 += tpart[li - s]; }
    workgroupBarrier();
    part[li] = a;
    tpart[li] = t2;
  }
  workgroupBarrier();
  var base = part[li] - c;
  var tb = tpart[li] - nt;
  for (var e = e0; e < e1; e++) {
    let cnt = perm[p.offBase + e];
    perm[p.offBase + e] = base;
    for (var r = 0u; r < cnt; r += p.bm) {
      let ti = p.tilesBase + 3u * tb;
      perm[ti] = e;
      perm[ti + 1u] = base + r;
      perm[ti + 2u] = base + min(r + p.bm, cnt);
      tb++;
    }
    base += cnt;
  }
  if (li == ${BLOCK - 1}u) {
    perm[0] = tpart[li];
    perm[1] = part[li];
    perm[p.offBase + p.E] = part[li];
  }
}`;

const SCATTER_WGSL = `
struct P { n: u32, E: u32, slotBase: u32, offBase: u32, orderBase: u32, rowStride: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> experts: array<i32>;
@group(0) @binding(2) var<storage, read> work: array<u32>;
@group(0) @binding(3) var<storage, read_write> perm: array<u32>;

@compute @workgroup_size(${BLOCK})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let s = gid.x + gid.y * p.rowStride;
  if (s >= p.n) { return; }
  let v = experts[p.slotBase + s];
  if (v < 0 || u32(v) >= p.E) { return; }
  let e = u32(v);
  let b = s / ${BLOCK}u;
  let pos = perm[p.offBase + e] + work[p.n + b * p.E + e] + work[s];
  perm[p.orderBase + pos] = s;
}`;


/**
 * Sort slots [slotBase, slotBase + n) of `experts` (i32, flattened [T, k]) by expert and cut the groups into tiles
 * of `bm` rows. Records three dispatches; the returned `perm` tensor is the caller's to release.
 */
export function moePermuteGpu(ctx: GpuContext, experts: GpuTensor, slotBase: number, n: number, E: number, bm: number): MoePermutation {
  if (experts.dtype !== 'i32') throw new Error(`moePermuteGpu: expert ids must be i32, got ${experts.dtype}`);
  if (!(n >= 1) || !(E >= 1) || !(bm >= 1)) throw new Error(`moePermuteGpu: need n, E, bm ≥ 1 (n=${n}, E=${E}, bm=${bm})`);
  const nb = cdiv(n, BLOCK);
  const maxTiles = Math.min(n, cdiv(n, bm) + Math.min(E, n));
  const offBase = 4;
  const tilesBase = offBase + E + 1;
  const orderBase = tilesBase + 3 * maxTiles;
  const workLen = n + nb * E;
  if (workLen * 4 > ctx.maxBinding || (orderBase + n) * 4 > ctx.maxBinding) {
    throw new Error(`moePermuteGpu: ${n} slots × ${E} experts need more scratch than one storage binding holds`);
  }
  const work = ctx.tensor([workLen], 'u32');
  const perm = ctx.tensor([orderBase + n], 'u32');
  const [bx, by] = grid2d(nb);
  ctx.run(RANK_WGSL, new Params().u32(n).u32(E).u32(slotBase).u32(bx), [experts, work], [bx, by]);
  ctx.run(SCAN_WGSL, new Params().u32(n).u32(E).u32(nb).u32(bm).u32(offBase).u32(tilesBase), [work, perm], [1]);
  ctx.run(SCATTER_WGSL, new Params().u32(n).u32(E).u32(slotBase).u32(offBase).u32(orderBase).u32(bx * BLOCK), [experts, work, perm], [bx, by]);
  ctx.release(work);
  return { perm, offBase, tilesBase, orderBase, maxTiles, nSlots: n, slotBase, bm };
}
