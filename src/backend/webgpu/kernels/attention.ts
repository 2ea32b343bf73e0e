/**
 * Causal scaled-dot-product attention on the GPU for one sequence over its KV cache, with exactly the semantics of
 * src/backend/cpu/attention.ts: query i sits at absolute position start + i and sees keys j with j ≤ start + i,
 * j < Tk, and (window ? j > start + i − window : true); grouped KV heads (kvh = h·KVH / H, i.e. floor(h / (H/KVH)));
 * optional per-head sinks that take part in the softmax denominator but contribute no value.
 *
 * Layouts (row-major f32): q [Tq, H, dq], k [Tk, KVH, dq], v [Tk, KVH, dv] → out [Tq, H, dv]. k and v may be the
 * buffers of a `GpuLayerKVCache` (only the first Tk rows are read).
 *
 * Two paths share one tile loop (one pass over the keys, nothing of size Tk stored):
 *
 * Plain path (prefill, short caches) — one workgroup of 64 invocations per (query, head): workgroup (x = h,
 * y = query). The q row is staged in workgroup memory. Queries are dispatched in chunks of ≤ 65535 (a `q0` offset),
 * heads must be ≤ 65535. The visible key range [lo, hi) is walked in tiles of 64 keys. Per tile:
 *   1. invocation t scores key t0 + t (dot product over dq, vec4 loads when dq % 4 == 0) and writes it to workgroup
 *      memory;                                                                                   — barrier
 *   2. every invocation scans the tile's scores for the new running max m' = max(m, tile max) (redundantly, so no
 *      reduction tree is needed) and writes its own p = exp(s − m');                            — barrier
 *   3. every invocation rescales its running state by α = exp(m − m') and adds the tile: l += Σ p (each invocation
 *      sums the same values in the same order, so l and m stay identical across the workgroup), acc[d] += Σ p·v[j, d]
 *      for the output dims it owns (d = t, t + 64, …: ⌈dv/64⌉ private accumulators; reads of a v row are coalesced).
 *   The online-softmax state is split over the output dims rather than over keys, so no cross-invocation merge of
 *   (max, sum, acc) is needed. Sinks start the running state at (m, l) = (sink[h], 1); an empty range gives 0.
 *
 * Split-K path ("flash-decoding", decode over long caches) — the plain path runs only Tq·H workgroups (32 for a
 * 32-head decode step), each streaming its whole key range serially, which leaves a big GPU idle. Here each query's
 * visible range [lo, hi) is cut into `chunks` chunks of `chunk` keys, counted from that query's own lo (so with a
 * window no chunk lies wholly outside it): chunk c covers [lo + c·chunk, min(hi, lo + (c+1)·chunk)).
 *   1. Partial kernel, workgroup (x = h, y = c, z = query): the tile loop above over the chunk only, no sinks; it
 *      writes the unnormalised state (m, l, acc[0..dv)) to a scratch row [query, h, c, dv + 2]. A chunk past the
 *      query's range (queries of one step have different causal limits, or the range is empty) writes m = −3e38
 *      (the kernels' "−∞"), l = 0, acc = 0.
 *   2. Merge kernel, workgroup (x = h, y = query) of 64 invocations: M = max(sink[h], max_c m_c), then in the fixed
 *      order c = 0, 1, … (deterministic; every invocation computes M and L identically): w_c = exp(m_c − M) for
 *      non-empty chunks and 0 for empty ones (so exp(−∞ − −∞) never arises), L = exp(sink[h] − M) + Σ w_c·l_c,
 *      out[d] = Σ w_c·acc_c[d] / L (0 when L = 0, as the CPU gives for an empty range). Sinks enter here, once.
 *   Thresholds (`attentionSplitPlan`): split when Tq·H ≤ SPLIT_TARGET_WG / 2 (= 512: fewer (query, head) pairs than
 *   half the workgroups needed to fill a large GPU — ~8 resident 64-invocation workgroups on each of ~132 SMs ≈ 1024)
 *   and the longest visible range has ≥ 2·SPLIT_MIN_CHUNK (= 512) keys. Chunks hold ≥ 256 keys (4 tiles: the
 *   dv + 2 floats of scratch written per chunk are < 1 % of the ≥ 256·(dq + dv) floats of K/V it reads, and the merge
 *   stays tiny) and are sized, in multiples of the 64-key tile, to give about SPLIT_TARGET_WG workgroups in all:
 *   e.g. H = 32, Tk = 4096 → 16 chunks of 256 keys, 512 workgroups; H = 8, Tk = 32768 → 128 chunks of 256.
 *   Prefill (Tq·H large) keeps the plain path: it already has Tq·H workgroups.
 *   `opts.splitK` overrides the choice (false: never; true: always, automatic chunk; n: always, n keys per chunk).
 *
 * Limits: dq·4 + 512 bytes of workgroup memory must fit in 16 KiB (dq ≤ 3968); pipelines are compiled per
 * (dq, dv, sinks dtype, path) and cached. Split-K scratch is rows·H·chunks·(dv + 2)·4 bytes (≈ 0.5 MiB for the
 * automatic plan at dv = 128); queries are processed in blocks so that it fits one storage binding. Everything is
 * accumulated in f32 (the CPU reference uses float64 for the dot products, exp and the denominator), so results
 * match to ~1e-6 relative, not bit-exactly, and the two paths agree to the same order (not bitwise: the split path
 * sums the keys in a different grouping).
 */
import type { GpuContext, GpuTensor } from '../context.js';
import { Params } from '../context.js';
import type { GpuWeight, GpuWeightDType } from '../weights.js';
import { weightBinding, weightReader, memoCode, MAX_GRID_DIM } from '../wgsl.js';

export interface GpuAttentionOpts {
  scale: number;
  /** Sliding window W: a query sees W keys including itself (null/0/undefined: none). */
  window?: number | null;
  /** Per-head sink logits, [H] (f32, or f16/bf16 storage). */
  sinks?: GpuWeight;
  /**
   * Split-K over the key range: undefined → automatic (`attentionSplitPlan`); false → never (plain path);
   * true → always, automatic chunk size; a positive integer → always, with that many keys per chunk.
   */
  splitK?: boolean | number;
}

/** How the split-K path cuts each query's visible key range. */
export interface AttentionSplitPlan {
  /** Keys per chunk. */
  chunk: number;
  /** Chunks per (query, head): ⌈longest visible range / chunk⌉, at least 1. */
  chunks: number;
}

const WG = 64;
const MAX_WG_DIM = MAX_GRID_DIM;
const WORKGROUP_BYTES = 16384;
/** Workgroups the split path aims for (fills a ~132-SM GPU at ~8 resident 64-invocation workgroups per SM). */
const SPLIT_TARGET_WG = 1024;
/** Fewest keys per automatic chunk (4 tiles of 64). */
const SPLIT_MIN_CHUNK = 256;
/** The kernels' "−∞" (finite, so that exp(m − m') never sees −∞ − −∞). */
const NEG = '-3.0e38';

/** The longest visible key range over queries at positions start … start + Tq − 1. */
function longestRange(Tq: number, Tk: number, start: number, window: number): number {
  let best = 0;
  for (let i = 0; i < Tq; i++) {
    const pos = start + i;
    const hi = Math.min(pos + 1, Tk);
    const lo = window > 0 ? Math.max(0, pos + 1 - window) : 0;
    best = Math.max(best, hi - lo);
  }
  return best;
}

/**
 * The split-K plan `attentionGpu` uses for these sizes, or null for the plain path (see the header for the
 * thresholds). `splitK` as in `GpuAttentionOpts`.
 */
export function attentionSplitPlan(
  Tq: number, H: number, Tk: number, start: number, window: number | null | undefined, splitK?: boolean | number,
): AttentionSplitPlan | null {
  if (splitK === false || Tq === 0 || H === 0) return null;
  const auto = splitK === undefined;
  if (auto && Tq * H * 2 > SPLIT_TARGET_WG) return null;
  const range = longestRange(Tq, Tk, start, window && window > 0 ? window : 0);
  if (auto && range < 2 * SPLIT_MIN_CHUNK) return null;
  let chunk: number;
  if (typeof splitK === 'number') {
    if (!Number.isInteger(splitK) || splitK <= 0) throw new Error(`attentionGpu: splitK chunk ${splitK} must be a positive integer`);
    chunk = splitK;
  } else {
    const want = Math.max(1, Math.min(Math.ceil(range / SPLIT_MIN_CHUNK), Math.floor(SPLIT_TARGET_WG / (Tq * H))));
    chunk = Math.max(WG, Math.ceil(Math.ceil(range / want) / WG) * WG);
  }
  chunk = Math.max(chunk, Math.ceil(range / MAX_WG_DIM)); // chunks go in the y dimension
  const chunks = Math.max(1, Math.ceil(range / chunk));
  if (auto && chunks < 2) return null;
  return { chunk, chunks };
}

/** The plain kernel ('full': normalised output) or the split partial kernel ('partial': chunk states). */
function attentionWgslUncached(dq: number, dv: number, sinks: GpuWeightDType | null, mode: 'full' | 'partial'): string {
  const vec = dq % 4 === 0;
  const DQN = vec ? dq / 4 : dq; // elements of the q/k arrays per row
  const T = vec ? 'vec4<f32>' : 'f32';
  const R = Math.max(1, Math.ceil(dv / WG));
  const partial = mode === 'partial';
  const accLines = (body: (r: number) => string): string => {
    const lines: string[] = [];
    for (let r = 0; r < R; r++) {
      const line = body(r);
      lines.push((r + 1) * WG > dv ? `    if (tid + ${r * WG}u < DV) { ${line} }` : `    ${line}`);
    }
    return lines.join('\n');
  };
  const head = partial
    ? `struct P { H: u32, KVH: u32, Tk: u32, start: u32, window: u32, q0: u32, chunk: u32, nChunks: u32, scale: f32 }`
    : `struct P { H: u32, KVH: u32, Tk: u32, start: u32, window: u32, q0: u32, scale: f32 }`;
  const outDecl = partial
    ? '@group(0) @binding(4) var<storage, read_write> part: array<f32>;'
    : '@group(0) @binding(4) var<storage, read_write> out: array<f32>;';
  // The key range this workgroup walks: the query's whole visible range, or one chunk of it.
  const range = partial
    ? `  let h = wg.x;
  let c = wg.y;
  let i = p.q0 + wg.z;
  let pos = p.start + i;
  let kvh = (h * p.KVH) / p.H;
  var qlo = 0u;
  if (p.window > 0u && pos + 1u > p.window) { qlo = pos + 1u - p.window; }
  let qhi = min(pos + 1u, p.Tk); // exclusive
  let lo = qlo + c * p.chunk;
  let hi = min(qhi, lo + p.chunk);`
    : `  let h = wg.x;
  let i = p.q0 + wg.y;
  let pos = p.start + i;
  let kvh = (h * p.KVH) / p.H;
  var lo = 0u;
  if (p.window > 0u && pos + 1u > p.window) { lo = pos + 1u - p.window; }
  let hi = min(pos + 1u, p.Tk); // exclusive`;
  const epilogue = partial
    ? `  let pb = ((wg.z * p.H + h) * p.nChunks + c) * (DV + 2u);
  if (tid == 0u) { part[pb] = m; part[pb + 1u] = l; }
  let ab = pb + 2u + tid;
${accLines((r) => `part[ab + ${r * WG}u] = acc[${r}];`)}`
    : `  let inv = select(0.0, 1.0 / l, l > 0.0);
  let ob = (i * p.H + h) * DV + tid;
${accLines((r) => `out[ob + ${r * WG}u] = acc[${r}] * inv;`)}`;
  return `// attention ${mode} dq=${dq} dv=${dv} sinks=${sinks ?? 'none'}
${head}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> q: array<${T}>;
@group(0) @binding(2) var<storage, read> k: array<${T}>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
${outDecl}
${sinks ? `${weightBinding(5, 'sinks', sinks)}\n${weightReader('sinks', sinks)}` : ''}
const WG: u32 = ${WG}u;
const DQN: u32 = ${DQN}u;
const DV: u32 = ${dv}u;
const NEG: f32 = ${NEG};
var<workgroup> qs: array<${T}, ${DQN}>;
var<workgroup> sc: array<f32, ${WG}>;
var<workgroup> pr: array<f32, ${WG}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) tid: u32) {
${range}
  let qb = (i * p.H + h) * DQN;
  for (var d = tid; d < DQN; d += WG) { qs[d] = q[qb + d]; }
  workgroupBarrier();

  var m = NEG;
  var l = 0.0;
${sinks ? '  m = sinks_at(h);\n  l = 1.0;' : ''}
  var acc: array<f32, ${R}>;
  let n = select(0u, hi - lo, hi > lo);
  let tiles = (n + WG - 1u) / WG;
  for (var tile = 0u; tile < tiles; tile++) {
    let t0 = lo + tile * WG;
    let cnt = min(WG, hi - t0);
    var s = 0.0;
    if (tid < cnt) {
      let kb = ((t0 + tid) * p.KVH + kvh) * DQN;
      var dot = ${vec ? 'vec4<f32>(0.0)' : '0.0'};
      for (var d = 0u; d < DQN; d++) { dot += qs[d] * k[kb + d]; }
      s = ${vec ? '(dot.x + dot.y + dot.z + dot.w)' : 'dot'} * p.scale;
    }
    sc[tid] = s;
    workgroupBarrier();
    var mn = m;
    for (var jj = 0u; jj < cnt; jj++) { mn = max(mn, sc[jj]); }
    pr[tid] = select(0.0, exp(s - mn), tid < cnt);
    workgroupBarrier();
    let alpha = select(0.0, exp(m - mn), m > NEG);
    m = mn;
    l *= alpha;
${accLines((r) => `acc[${r}] *= alpha;`)}
    for (var jj = 0u; jj < cnt; jj++) {
      let pj = pr[jj];
      l += pj;
      let vb = ((t0 + jj) * p.KVH + kvh) * DV + tid;
${accLines((r) => `acc[${r}] += pj * v[vb + ${r * WG}u];`)}
    }
  }
${epilogue}
}`;
}

/** The split merge kernel: chunk states [rows, H, chunks, dv + 2] → out rows q0 … (see the header). */
function mergeWgslUncached(dv: number, sinks: GpuWeightDType | null): string {
  return `// attention merge dv=${dv} sinks=${sinks ?? 'none'}
struct P { H: u32, nChunks: u32, q0: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${sinks ? `${weightBinding(3, 'sinks', sinks)}\n${weightReader('sinks', sinks)}` : ''}
const WG: u32 = ${WG}u;
const DV: u32 = ${dv}u;
const S: u32 = ${dv + 2}u;
const NEG: f32 = ${NEG};

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) tid: u32) {
  let h = wg.x;
  let i = p.q0 + wg.y;
  let base = (wg.y * p.H + h) * p.nChunks * S;
  var M = ${sinks ? 'sinks_at(h)' : 'NEG'};
  for (var c = 0u; c < p.nChunks; c++) { M = max(M, part[base + c * S]); }
  var L = ${sinks ? 'exp(sinks_at(h) - M)' : '0.0'};
  for (var c = 0u; c < p.nChunks; c++) {
    let mc = part[base + c * S];
    if (mc > NEG) { L += exp(mc - M) * part[base + c * S + 1u]; }
  }
  let inv = select(0.0, 1.0 / L, L > 0.0);
  let ob = (i * p.H + h) * DV;
  for (var d = tid; d < DV; d += WG) {
    var a = 0.0;
    for (var c = 0u; c < p.nChunks; c++) {
      let mc = part[base + c * S];
      if (mc > NEG) { a += exp(mc - M) * part[base + c * S + 2u + d]; }
    }
    out[ob + d] = a * inv;
  }
}`;
}

/**
 * Attention of q [Tq, H, dq] over k [Tk, KVH, dq], v [Tk, KVH, dv] (query i at absolute position start + i) →
 * a new [Tq, H, dv] tensor (release it when done). H must be a multiple of KVH. Decode over long caches takes the
 * split-K path (see the header and `opts.splitK`).
 */
export function attentionGpu(
  ctx: GpuContext, q: GpuTensor, Tq: number, H: number, dq: number,
  k: GpuTensor, v: GpuTensor, Tk: number, KVH: number, dv: number,
  start: number, opts: GpuAttentionOpts,
): GpuTensor {
  if (KVH <= 0 || H % KVH !== 0) throw new Error(`attentionGpu: ${H} heads are not a multiple of ${KVH} KV heads`);
  if (H > MAX_WG_DIM) throw new Error(`attentionGpu: ${H} heads exceed ${MAX_WG_DIM}`);
  if (dq <= 0 || dv <= 0) throw new Error(`attentionGpu: head dims must be positive (dq ${dq}, dv ${dv})`);
  if (dq * 4 + 2 * WG * 4 > WORKGROUP_BYTES) throw new Error(`attentionGpu: dq ${dq} exceeds the workgroup memory (max ${(WORKGROUP_BYTES - 2 * WG * 4) / 4})`);
  if (opts.sinks && opts.sinks.shape.reduce((a, b) => a * b, 1) < H) throw new Error(`attentionGpu: sinks [${opts.sinks.shape}] has fewer than ${H} entries`);
  const window = opts.window && opts.window > 0 ? opts.window : 0;
  const plan = attentionSplitPlan(Tq, H, Tk, start, window, opts.splitK);
  const out = ctx.tensor([Tq, H, dv]);
  if (Tq === 0 || H === 0) return out;
  const sinksDtype = opts.sinks ? opts.sinks.dtype : null;
  if (!plan) {
    const code = attentionWgsl(dq, dv, sinksDtype, 'full');
    const bindings = opts.sinks ? [q, k, v, out, opts.sinks.buffer] : [q, k, v, out];
    for (let q0 = 0; q0 < Tq; q0 += MAX_WG_DIM) {
      const rows = Math.min(MAX_WG_DIM, Tq - q0);
      const params = new Params().u32(H).u32(KVH).u32(Tk).u32(start).u32(window).u32(q0).f32(opts.scale);
      ctx.run(code, params, bindings, [H, rows]);
    }
    return out;
  }
  const { chunk, chunks } = plan;
  const rowBytes = H * chunks * (dv + 2) * 4; // scratch per query
  const block = Math.min(MAX_WG_DIM, Tq, Math.floor(ctx.maxBinding / rowBytes));
  if (block < 1) throw new Error(`attentionGpu: split-K scratch of ${rowBytes} bytes per query exceeds the ${ctx.maxBinding}-byte binding limit (use a larger splitK chunk)`);
  const part = ctx.tensor([block, H, chunks, dv + 2]);
  const partialCode = attentionWgsl(dq, dv, null, 'partial');
  const mergeCode = mergeWgsl(dv, sinksDtype);
  const mergeBindings = opts.sinks ? [part, out, opts.sinks.buffer] : [part, out];
  for (let q0 = 0; q0 < Tq; q0 += block) {
    const rows = Math.min(block, Tq - q0);
    const pp = new Params().u32(H).u32(KVH).u32(Tk).u32(start).u32(window).u32(q0).u32(chunk).u32(chunks).f32(opts.scale);
    ctx.run(partialCode, pp, [q, k, v, part], [H, chunks, rows]);
    ctx.run(mergeCode, new Params().u32(H).u32(chunks).u32(q0), mergeBindings, [H, rows]);
  }
  ctx.release(part);
  return out;
}

// Generated WGSL memoised per configuration (see memoCode).
const attentionWgsl = memoCode(attentionWgslUncached);
const mergeWgsl = memoCode(mergeWgslUncached);
