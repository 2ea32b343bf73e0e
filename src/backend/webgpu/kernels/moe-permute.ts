/**
 * MoE permutation on the GPU (the MegaBlocks / vLLM `moe_align_block_size` step): sort the token slots of a routing
 * by expert, stably, and cut each expert's group of rows into tiles of BM rows for the grouped GEMMs, with no host
 * readback of the counts. Two paths with the same output (below), picked by `moePermuteGpu`:
 *
 * Three dispatches (any n):
 *   1. rank     one workgroup of 256 threads per block of 256 slots. The block's expert ids go to workgroup memory;
 *               each slot's rank = how many earlier slots of the block chose the same expert (a 256-step scan of
 *               workgroup memory per thread); the last slot of each expert in the block writes the block's count
 *               for that expert into blockCounts[block, e] (zeroed first by the same workgroup, ordered by a
 *               storage barrier).
 *   2. scan     one workgroup of 256 threads; thread i owns a contiguous range of ⌈E/256⌉ experts. For each of its
 *               experts it turns blockCounts[·, e] into an exclusive prefix over blocks (in place) and totals the
 *               expert's count; a workgroup scan over the 256 partial sums gives every expert's first row
 *               (offsets, exclusive prefix over experts) and first tile; the thread then writes its experts' tiles
 *               (expert, first row, end row) — ⌈count / BM⌉ per expert, in expert order, and zeroes the unused tile
 *               slots. Thread 255 writes the tile count and the number of routed slots.
 *   3. scatter  one thread per slot: order[offsets[e] + blockPrefix[block, e] + rank] = slot; the threads of slots
 *               ≥ routed zero order[slot] (the unused tail of the order).
 *
 * One dispatch (n ≤ 256, the decode case: n = k slots of one token). Each dispatch costs several µs of host time
 * (encoding, bind group, Dawn's validation), three per MoE layer per token, so for one rank block (nb = 1) a single
 * workgroup of 256 threads does everything, thread i owning slot i, with 4 KiB of workgroup memory whatever E is
 * (ex, sx, sEnd, sc: 256 u32 each; nothing E-sized, so E is unbounded):
 *   a. ex[i] = expert of slot i (0xffffffff if out of [0, E) or i ≥ n); sx[i] = 0xffffffff (barrier).
 *   b. each routed slot scans ex[0..n): rank r (earlier slots of its expert), cnt (slots of its expert) and less
 *      (routed slots of smaller experts), so its sorted row is q = less + r and its expert's rows are
 *      [less, less + cnt). It writes order[q] = slot directly, and in workgroup memory sx[q] = expert,
 *      sEnd[q] = less + cnt, and sc[q] = (1 << 16) | (r % BM == 0) — one routed row, and whether it starts a tile
 *      (barrier). sx is then sorted: the routed rows' experts in order, then 0xffffffff padding.
 *   c. a Hillis–Steele inclusive scan of sc (256 entries, 8 steps) counts, for each sorted row, the tiles started
 *      up to it (low 16 bits) and the routed rows up to it (high 16 bits); sc[255] holds the totals.
 *   d. row q that starts a tile writes tile (sc[q] & 0xffff) − 1 = (sx[q], q, min(q + BM, sEnd[q])); a row past the
 *      routed ones zeroes order[q]; offsets[e] for e = i, i + 256, … ≤ E is a binary search in sx (the first row
 *      whose expert is ≥ e: 8 steps); the unused tile slots are zeroed; thread 0 writes the tile count, the routed
 *      slots and zeroes perm[2..3].
 * Integer work only, no atomics: the result is bit-identical to the three-dispatch path (test/backend/webgpu/
 * moe-permute.test.ts checks every word). `moePermuteGpu` takes it whenever n ≤ 256 unless told otherwise.
 *
 * The result is deterministic: within an expert, slots stay in slot order (t·k + j), exactly like
 * src/moe/dispatch.ts. Slots whose expert id is outside [0, E) (zero-computation experts, or garbage) are left out of
 * the order and of every count; whoever consumes the slots must skip them too (moeCombineGpu does).
 *
 * The tile count is at most ⌈n / BM⌉ + min(E, n) and at most n (every tile has a row), so callers dispatch that
 * many workgroups and let the ones past the actual count (`perm[0]`) exit.
 *
 * Output: one u32 tensor `perm`, every word of it written by either path:
 *   perm[0] = tiles used, perm[1] = routed slots (ids in range), perm[2] = perm[3] = 0 (padding),
 *   perm[offBase + e] = first sorted row of expert e (e = 0..E; perm[offBase + E] = routed slots),
 *   perm[tilesBase + 3·i + {0, 1, 2}] = (expert, first sorted row, end sorted row) of tile i (0 for i ≥ tiles used),
 *   perm[orderBase + r] = local slot index (0..n−1, relative to slotBase) of sorted row r (0 for r ≥ routed slots).
 *
 * Limits: slot indices and buffer indices are u32; the scratch of the three-dispatch path holds n + ⌈n/256⌉·E u32
 * and must fit one binding, and so must `perm`.
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
struct P { n: u32, E: u32, nb: u32, bm: u32, offBase: u32, tilesBase: u32, maxTiles: u32 }
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
  for (var t = tpart[${BLOCK - 1}u] + li; t < p.maxTiles; t += ${BLOCK}u) {
    let ti = p.tilesBase + 3u * t;
    perm[ti] = 0u;
    perm[ti + 1u] = 0u;
    perm[ti + 2u] = 0u;
  }
  if (li == ${BLOCK - 1}u) {
    perm[0] = tpart[li];
    perm[1] = part[li];
    perm[2] = 0u;
    perm[3] = 0u;
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
  if (s >= perm[1]) { perm[p.orderBase + s] = 0u; }
  let v = experts[p.slotBase + s];
  if (v < 0 || u32(v) >= p.E) { return; }
  let e = u32(v);
  let b = s / ${BLOCK}u;
  let pos = perm[p.offBase + e] + work[p.n + b * p.E + e] + work[s];
  perm[p.orderBase + pos] = s;
}`;

const NONE = 0xffffffff;

const FUSED_WGSL = `
struct P { n: u32, E: u32, slotBase: u32, bm: u32, offBase: u32, tilesBase: u32, orderBase: u32, maxTiles: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> experts: array<i32>;
@group(0) @binding(2) var<storage, read_write> perm: array<u32>;
var<workgroup> ex: array<u32, ${BLOCK}>;
var<workgroup> sx: array<u32, ${BLOCK}>;
var<workgroup> sEnd: array<u32, ${BLOCK}>;
var<workgroup> sc: array<u32, ${BLOCK}>;

@compute @workgroup_size(${BLOCK})
fn main(@builtin(local_invocation_index) li: u32) {
  var e = ${NONE}u;
  if (li < p.n) {
    let v = experts[p.slotBase + li];
    if (v >= 0 && u32(v) < p.E) { e = u32(v); }
  }
  ex[li] = e;
  sx[li] = ${NONE}u;
  sEnd[li] = 0u;
  sc[li] = 0u;
  workgroupBarrier();
  if (e != ${NONE}u) {
    var r = 0u;
    var cnt = 0u;
    var less = 0u;
    for (var j = 0u; j < p.n; j++) {
      let x = ex[j];
      if (x == e) {
        if (j < li) { r++; }
        cnt++;
      } else if (x < e) {
        less++;
      }
    }
    let q = less + r;
    perm[p.orderBase + q] = li;
    sx[q] = e;
    sEnd[q] = less + cnt;
    sc[q] = select(0x10000u, 0x10001u, r % p.bm == 0u);
  }
  workgroupBarrier();
  let own = sc[li];
  for (var s = 1u; s < ${BLOCK}u; s <<= 1u) {
    var a = sc[li];
    if (li >= s) { a += sc[li - s]; }
    workgroupBarrier();
    sc[li] = a;
    workgroupBarrier();
  }
  let tiles = sc[${BLOCK - 1}u] & 0xffffu;
  let routed = sc[${BLOCK - 1}u] >> 16u;
  let xe = sx[li];
  if ((own & 1u) == 1u) {
    let ti = p.tilesBase + 3u * ((sc[li] & 0xffffu) - 1u);
    perm[ti] = xe;
    perm[ti + 1u] = li;
    perm[ti + 2u] = min(li + p.bm, sEnd[li]);
  }
  if (xe == ${NONE}u && li < p.n) { perm[p.orderBase + li] = 0u; }
  for (var q = li; q <= p.E; q += ${BLOCK}u) {
    var lo = 0u;
    var hi = ${BLOCK}u;
    while (lo < hi) {
      let mid = (lo + hi) >> 1u;
      if (sx[mid] < q) { lo = mid + 1u; } else { hi = mid; }
    }
    perm[p.offBase + q] = lo;
  }
  for (var t = tiles + li; t < p.maxTiles; t += ${BLOCK}u) {
    let ti = p.tilesBase + 3u * t;
    perm[ti] = 0u;
    perm[ti + 1u] = 0u;
    perm[ti + 2u] = 0u;
  }
  if (li == 0u) {
    perm[0] = tiles;
    perm[1] = routed;
    perm[2] = 0u;
    perm[3] = 0u;
  }
}`;

/** Most slots the single-dispatch path takes (one rank block; one thread per slot). */
export const MOE_PERMUTE_FUSED_MAX_SLOTS = BLOCK;

export interface MoePermuteOptions {
  /**
   * 'auto' (default): one dispatch when n ≤ MOE_PERMUTE_FUSED_MAX_SLOTS, else three; 'fused': one dispatch (throws
   * for n > MOE_PERMUTE_FUSED_MAX_SLOTS); 'three': always the three-dispatch path. All give the same `perm`.
   */
  readonly path?: 'auto' | 'fused' | 'three';
}

/**
 * Sort slots [slotBase, slotBase + n) of `experts` (i32, flattened [T, k]) by expert and cut the groups into tiles
 * of `bm` rows. Records one dispatch (n ≤ 256) or three (see the file comment; `opts.path` forces either); the returned
 * `perm` tensor is the caller's to release.
 */
export function moePermuteGpu(
  ctx: GpuContext, experts: GpuTensor, slotBase: number, n: number, E: number, bm: number, opts: MoePermuteOptions = {},
): MoePermutation {
  const path = opts.path ?? 'auto';
  if (experts.dtype !== 'i32') throw new Error(`moePermuteGpu: expert ids must be i32, got ${experts.dtype}`);
  if (!(n >= 1) || !(E >= 1) || !(bm >= 1)) throw new Error(`moePermuteGpu: need n, E, bm ≥ 1 (n=${n}, E=${E}, bm=${bm})`);
  if (path === 'fused' && n > MOE_PERMUTE_FUSED_MAX_SLOTS) {
    throw new Error(`moePermuteGpu: the single-dispatch path takes at most ${MOE_PERMUTE_FUSED_MAX_SLOTS} slots, got n=${n}`);
  }
  const nb = cdiv(n, BLOCK);
  const maxTiles = Math.min(n, cdiv(n, bm) + Math.min(E, n));
  const offBase = 4;
  const tilesBase = offBase + E + 1;
  const orderBase = tilesBase + 3 * maxTiles;
  if ((orderBase + n) * 4 > ctx.maxBinding) {
    throw new Error(`moePermuteGpu: ${n} slots × ${E} experts need a larger permutation than one storage binding holds`);
  }
  if (path === 'fused' || (path === 'auto' && n <= MOE_PERMUTE_FUSED_MAX_SLOTS)) {
    const perm = ctx.tensor([orderBase + n], 'u32');
    const params = new Params().u32(n).u32(E).u32(slotBase).u32(bm).u32(offBase).u32(tilesBase).u32(orderBase).u32(maxTiles);
    ctx.run(FUSED_WGSL, params, [experts, perm], [1]);
    return { perm, offBase, tilesBase, orderBase, maxTiles, nSlots: n, slotBase, bm };
  }
  const workLen = n + nb * E;
  if (workLen * 4 > ctx.maxBinding) {
    throw new Error(`moePermuteGpu: ${n} slots × ${E} experts need more scratch than one storage binding holds`);
  }
  const work = ctx.tensor([workLen], 'u32');
  const perm = ctx.tensor([orderBase + n], 'u32');
  const [bx, by] = grid2d(nb);
  ctx.run(RANK_WGSL, new Params().u32(n).u32(E).u32(slotBase).u32(bx), [experts, work], [bx, by]);
  ctx.run(SCAN_WGSL, new Params().u32(n).u32(E).u32(nb).u32(bm).u32(offBase).u32(tilesBase).u32(maxTiles), [work, perm], [1]);
  ctx.run(SCATTER_WGSL, new Params().u32(n).u32(E).u32(slotBase).u32(offBase).u32(orderBase).u32(bx * BLOCK), [experts, work, perm], [bx, by]);
  ctx.release(work);
  return { perm, offBase, tilesBase, orderBase, maxTiles, nSlots: n, slotBase, bm };
}
