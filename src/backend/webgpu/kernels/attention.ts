/**
 * Causal scaled-dot-product attention on the GPU for one sequence over its KV cache, with exactly the semantics of
 * src/backend/cpu/attention.ts: query i sits at absolute position start + i and sees keys j with j ≤ start + i,
 * j < Tk, and (window ? j > start + i − window : true); grouped KV heads (kvh = h·KVH / H, i.e. floor(h / (H/KVH)));
 * optional per-head sinks that take part in the softmax denominator but contribute no value.
 *
 * Layouts (row-major f32): q [Tq, H, dq], k [Tk, KVH, dq], v [Tk, KVH, dv] → out [Tq, H, dv]. k and v may be the
 * buffers of a `GpuLayerKVCache` (only the first Tk rows are read).
 *
 * Algorithm (flash-decoding style, one pass over the keys, nothing of size Tk stored):
 *   - One workgroup of 64 invocations per (query, head): workgroup (x = h, y = query). The q row is staged in
 *     workgroup memory. Queries are dispatched in chunks of ≤ 65535 (a `q0` offset), heads must be ≤ 65535.
 *   - The visible key range [lo, hi) is walked in tiles of 64 keys. Per tile:
 *       1. invocation t scores key lo + 64·tile + t (dot product over dq, vec4 loads when dq % 4 == 0) and
 *          writes it to workgroup memory;                                                       — barrier
 *       2. every invocation scans the tile's scores for the new running max m' = max(m, tile max) (redundantly,
 *          so no reduction tree is needed) and writes its own p = exp(s − m');                  — barrier
 *       3. every invocation rescales its running state by α = exp(m − m') and adds the tile: l += Σ p (each
 *          invocation sums the same values in the same order, so l and m stay identical across the workgroup),
 *          acc[d] += Σ p·v[j, d] for the output dims it owns (d = t, t + 64, …: ⌈dv/64⌉ private accumulators;
 *          reads of a v row are coalesced across invocations).
 *     So the "partial states" of the online softmax are split over the output dims rather than over keys, and the
 *     merge is implicit: no final cross-invocation reduction of (max, sum, acc) is needed.
 *   - Sinks start the running state at (m, l) = (sink[h], 1); an empty key range gives 0 (as the CPU does).
 *
 * Limits: dq·4 + 512 bytes of workgroup memory must fit in 16 KiB (dq ≤ 3968); a pipeline is compiled per
 * (dq, dv, sinks dtype) and cached. Everything is accumulated in f32 (the CPU reference uses float64 for the dot
 * products, exp and the denominator), so results match to ~1e-6 relative, not bit-exactly. Decode (Tq = 1) runs
 * H workgroups, each streaming its whole key range; very long contexts with few heads would profit from a split-K
 * variant (not implemented).
 */
import type { GpuContext, GpuTensor } from '../context.js';
import { Params } from '../context.js';
import type { GpuWeight, GpuWeightDType } from '../weights.js';
import { weightBinding, weightReader } from '../wgsl.js';

export interface GpuAttentionOpts {
  scale: number;
  /** Sliding window W: a query sees W keys including itself (null/0/undefined: none). */
  window?: number | null;
  /** Per-head sink logits, [H] (f32, or f16/bf16 storage). */
  sinks?: GpuWeight;
}

const WG = 64;
const MAX_WG_DIM = 65535;
const WORKGROUP_BYTES = 16384;

function attentionWgsl(dq: number, dv: number, sinks: GpuWeightDType | null): string {
  const vec = dq % 4 === 0;
  const DQN = vec ? dq / 4 : dq; // elements of the q/k arrays per row
  const T = vec ? 'vec4<f32>' : 'f32';
  const R = Math.max(1, Math.ceil(dv / WG));
  const accLines = (body: (r: number) => string): string => {
    const lines: string[] = [];
    for (let r = 0; r < R; r++) {
      const line = body(r);
      lines.push((r + 1) * WG > dv ? `    if (tid + ${r * WG}u < DV) { ${line} }` : `    ${line}`);
    }
    return lines.join('\n');
  };
  return `// attention dq=${dq} dv=${dv} sinks=${sinks ?? 'none'}
struct P { H: u32, KVH: u32, Tk: u32, start: u32, window: u32, q0: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> q: array<${T}>;
@group(0) @binding(2) var<storage, read> k: array<${T}>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
${sinks ? `${weightBinding(5, 'sinks', sinks)}\n${weightReader('sinks', sinks)}` : ''}
const WG: u32 = ${WG}u;
const DQN: u32 = ${DQN}u;
const DV: u32 = ${dv}u;
const NEG: f32 = -3.0e38;
var<workgroup> qs: array<${T}, ${DQN}>;
var<workgroup> sc: array<f32, ${WG}>;
var<workgroup> pr: array<f32, ${WG}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) tid: u32) {
  let h = wg.x;
  let i = p.q0 + wg.y;
  let pos = p.start + i;
  let kvh = (h * p.KVH) / p.H;
  var lo = 0u;
  if (p.window > 0u && pos + 1u > p.window) { lo = pos + 1u - p.window; }
  let hi = min(pos + 1u, p.Tk); // exclusive
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
  let inv = select(0.0, 1.0 / l, l > 0.0);
  let ob = (i * p.H + h) * DV + tid;
${accLines((r) => `out[ob + ${r * WG}u] = acc[${r}] * inv;`)}
}`;
}

/**
 * Attention of q [Tq, H, dq] over k [Tk, KVH, dq], v [Tk, KVH, dv] (query i at absolute position start + i) →
 * a new [Tq, H, dv] tensor (release it when done). H must be a multiple of KVH.
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
  const out = ctx.tensor([Tq, H, dv]);
  if (Tq === 0 || H === 0) return out;
  const code = attentionWgsl(dq, dv, opts.sinks ? opts.sinks.dtype : null);
  const window = opts.window && opts.window > 0 ? opts.window : 0;
  const bindings = opts.sinks ? [q, k, v, out, opts.sinks.buffer] : [q, k, v, out];
  for (let q0 = 0; q0 < Tq; q0 += MAX_WG_DIM) {
    const rows = Math.min(MAX_WG_DIM, Tq - q0);
    const params = new Params().u32(H).u32(KVH).u32(Tk).u32(start).u32(window).u32(q0).f32(opts.scale);
    ctx.run(code, params, bindings, [H, rows]);
  }
  return out;
}
