/**
 * GQA query/key preparation in one dispatch: each head of q and k optionally RMS-normalised over its hd elements
 * (Qwen3's per-head q_norm / k_norm) and then rotated by RoPE — the same function as norm.ts's rmsNorm (groups of
 * hd) followed by rope.ts's applyRopeGpu on q and on k, which take four dispatches (two without the norms). Decode
 * records ~20 dispatches a layer and each costs the host several microseconds through Dawn (bench/gpu-host), so
 * merging them is worth a kernel. Two entry points share the kernel text:
 *
 *   qkNormRopeGpu    q[T, Hq, hd] and k[T, Hk, hd] in place (models whose q/k norm spans the whole projection run
 *                    that norm first with norm.ts, then this without the norm).
 *   qkvToCacheGpu    the output of one fused q/k/v projection, qkv[T, (Hq + 2·Hk)·hd] (per row: q heads, k heads,
 *                    v heads) → q[T, Hq, hd] (normalised, rotated), and k (normalised, rotated) and v (copied)
 *                    written straight into the layer's KV cache rows [row0, row0 + T). This replaces three
 *                    projections, the q/k preparation and two cache copies (which also split the compute pass).
 *
 * One workgroup of 64 threads per (token, head) — q heads, then k heads (then v heads) — folded into a 2-D grid:
 *   1. the head's hd elements go to workgroup memory (threads stride by 64); a v head is copied and done;
 *   2. with the norm: partial Σx² per thread in the order of norm.ts with 64 threads, a workgroup tree reduction,
 *      r = 1 / sqrt(Σ / hd + eps), x ← (x · r) · w — the rmsNorm kernel's arithmetic;
 *   3. each thread rotates its pairs (i, i + half) (`half` layout) or (2i, 2i + 1) (interleaved) with (c, s) =
 *      cosSin[t, i] exactly like rope.ts and stores them; dims past 2·half (partial rotary) are stored unrotated.
 * Inputs and outputs are separate bindings, so a workgroup branches (uniformly) on what its head is.
 *
 * Limits: hd ≤ QK_NORM_ROPE_MAX_HD (workgroup memory), 2·half ≤ hd; WebGpuOps falls back to the separate kernels
 * beyond. Norm weights are f32 vectors of length hd.
 */
import type { GpuContext, GpuTensor } from '../context.js';
import { Params } from '../context.js';
import type { GpuWeight } from '../weights.js';
import { grid2d, memoCode } from '../wgsl.js';

const WG = 64;
/** Largest head dimension the fused kernel holds in workgroup memory. */
export const QK_NORM_ROPE_MAX_HD = 1024;

type Mode = 'qk' | 'qkv';

function codeUncached(mode: Mode, norm: boolean): string {
  const qkv = mode === 'qkv';
  // kind: 0 = a q head, 1 = a k head, 2 = a v head (qkv mode); `src` / `dst` are the head's first element.
  const load = qkv ? 'xs[i] = xin[src + i];' : 'if (kind == 0u) { xs[i] = q[src + i]; } else { xs[i] = k[src + i]; }';
  const store = (idx: string, v: string): string => (qkv
    ? `if (kind == 0u) { q[dst + ${idx}] = ${v}; } else { kc[dst + ${idx}] = ${v}; }`
    : `if (kind == 0u) { q[dst + ${idx}] = ${v}; } else { k[dst + ${idx}] = ${v}; }`);
  const bindings = qkv
    ? `@group(0) @binding(1) var<storage, read> xin: array<f32>;
@group(0) @binding(2) var<storage, read_write> q: array<f32>;
@group(0) @binding(3) var<storage, read_write> kc: array<f32>;
@group(0) @binding(4) var<storage, read_write> vc: array<f32>;
@group(0) @binding(5) var<storage, read> cs: array<f32>;`
    : `@group(0) @binding(1) var<storage, read_write> q: array<f32>;
@group(0) @binding(2) var<storage, read_write> k: array<f32>;
@group(0) @binding(3) var<storage, read> cs: array<f32>;`;
  const nb = qkv ? 6 : 4;
  const place = qkv
    ? `  let heads = p.Hq + 2u * p.Hk;
  let t = g / heads;
  let h = g % heads;
  let kw = p.Hk * p.hd;
  let src = t * heads * p.hd + h * p.hd;
  var kind = 0u;
  var dst = (t * p.Hq + h) * p.hd;
  if (h >= p.Hq + p.Hk) { kind = 2u; dst = (p.row0 + t) * kw + (h - p.Hq - p.Hk) * p.hd; }
  else if (h >= p.Hq) { kind = 1u; dst = (p.row0 + t) * kw + (h - p.Hq) * p.hd; }
  if (kind == 2u) {
    for (var i = li; i < p.hd; i += WG) { vc[dst + i] = xin[src + i]; }
    return;
  }`
    : `  let heads = p.Hq + p.Hk;
  let t = g / heads;
  let h = g % heads;
  var kind = 0u;
  var dst = (t * p.Hq + h) * p.hd;
  if (h >= p.Hq) { kind = 1u; dst = (t * p.Hk + h - p.Hq) * p.hd; }
  let src = dst;`;
  return `// ${qkv ? 'fused q/k/v projection → q + KV cache: ' : 'q/k '}${norm ? 'per-head RMSNorm + ' : ''}RoPE, one workgroup per (token, head)
const WG = ${WG}u;
struct P { T: u32, Hq: u32, Hk: u32, hd: u32, half: u32, interleaved: u32, eps: f32, gx: u32, row0: u32 }
@group(0) @binding(0) var<uniform> p: P;
${bindings}
${norm ? `@group(0) @binding(${nb}) var<storage, read> wq: array<f32>;
@group(0) @binding(${nb + 1}) var<storage, read> wk: array<f32>;` : ''}
var<workgroup> xs: array<f32, ${QK_NORM_ROPE_MAX_HD}>;
${norm ? `var<workgroup> red: array<f32, ${WG}>;` : ''}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let g = wid.y * p.gx + wid.x;
  if (g >= p.T * (p.Hq + ${qkv ? '2u * ' : ''}p.Hk)) { return; }
${place}
  let hd = p.hd;
  for (var i = li; i < hd; i += WG) { ${load} }
${norm ? `  var s = 0.0;
  for (var i = li; i < hd; i += WG) { let v = xs[i]; s += v * v; }
  red[li] = s;
  workgroupBarrier();
  for (var st = WG / 2u; st > 0u; st = st >> 1u) {
    if (li < st) { red[li] += red[li + st]; }
    workgroupBarrier();
  }
  let r = 1.0 / sqrt(red[0] / f32(hd) + p.eps);
  for (var i = li; i < hd; i += WG) { xs[i] = (xs[i] * r) * select(wk[i], wq[i], kind == 0u); }` : ''}
  workgroupBarrier();
  for (var i = li; i < p.half; i += WG) {
    let c = cs[(t * p.half + i) * 2u];
    let sn = cs[(t * p.half + i) * 2u + 1u];
    var a: u32;
    var b: u32;
    if (p.interleaved != 0u) { a = 2u * i; b = a + 1u; } else { a = i; b = i + p.half; }
    let x1 = xs[a];
    let x2 = xs[b];
    ${store('a', 'x1 * c - x2 * sn')}
    ${store('b', 'x2 * c + x1 * sn')}
  }
${norm || qkv ? `  for (var i = 2u * p.half + li; i < hd; i += WG) { ${store('i', 'xs[i]')} }` : ''}
}
`;
}

const code = memoCode(codeUncached);

interface QkNorm { q: GpuWeight; k: GpuWeight; eps: number }

function checkArgs(what: string, hd: number, half: number, norm: QkNorm | undefined): void {
  if (hd > QK_NORM_ROPE_MAX_HD) throw new Error(`${what}: head dim ${hd} exceeds ${QK_NORM_ROPE_MAX_HD}`);
  if (2 * half > hd) throw new Error(`${what}: 2·${half} rotated dims exceed head dim ${hd}`);
  if (norm) {
    for (const w of [norm.q, norm.k]) {
      if (w.dtype !== 'f32' || w.shape.length !== 1 || w.shape[0] !== hd) {
        throw new Error(`${what}: norm weight ${w.name} is ${w.dtype} [${w.shape}], expected f32 [${hd}]`);
      }
    }
  }
}

function params(T: number, Hq: number, Hk: number, hd: number, half: number, interleaved: boolean, norm: QkNorm | undefined, gx: number, row0: number): Params {
  return new Params().u32(T).u32(Hq).u32(Hk).u32(hd).u32(half).u32(interleaved ? 1 : 0).f32(norm?.eps ?? 0).u32(gx).u32(row0);
}

/**
 * In place: q[T, Hq, hd], k[T, Hk, hd] ← RoPE(RMSNorm_head(·)) with a [T, half, 2] cos/sin table (ropeCosSin);
 * without `norm`, RoPE only. Norm weights: f32 [hd].
 */
export function qkNormRopeGpu(
  ctx: GpuContext, q: GpuTensor, k: GpuTensor, T: number, Hq: number, Hk: number, hd: number, cosSin: GpuTensor,
  half: number, interleaved: boolean, norm?: QkNorm,
): void {
  checkArgs('qkNormRopeGpu', hd, half, norm);
  if (q.buffer.size < T * Hq * hd * 4 || k.buffer.size < T * Hk * hd * 4) throw new Error('qkNormRopeGpu: q or k holds fewer than T·H·hd values');
  const groups = T * (Hq + Hk);
  if (groups === 0) return;
  const [gx, gy] = grid2d(groups);
  const bindings = norm ? [q, k, cosSin, norm.q.buffer, norm.k.buffer] : [q, k, cosSin];
  ctx.run(code('qk', norm !== undefined), params(T, Hq, Hk, hd, half, interleaved, norm, gx, 0), bindings, [gx, gy]);
}

/**
 * From a fused projection qkv[T, (Hq + 2·Hk)·hd]: q[T, Hq, hd] ← RoPE(RMSNorm_head(q part)) into `q` (returned), and
 * rows row0 … row0 + T − 1 of the caches kCache[·, Hk·hd] ← RoPE(RMSNorm_head(k part)), vCache[·, Hk·hd] ← v part.
 * The caches must already hold those rows (GpuLayerKVCache.reserve).
 */
export function qkvToCacheGpu(
  ctx: GpuContext, qkv: GpuTensor, T: number, Hq: number, Hk: number, hd: number, cosSin: GpuTensor, half: number,
  interleaved: boolean, kCache: GpuTensor, vCache: GpuTensor, row0: number, norm?: QkNorm, q: GpuTensor = ctx.tensor([T, Hq, hd]),
): GpuTensor {
  checkArgs('qkvToCacheGpu', hd, half, norm);
  const kw = Hk * hd;
  if (qkv.buffer.size < T * (Hq + 2 * Hk) * hd * 4) throw new Error(`qkvToCacheGpu: qkv holds fewer than T·(Hq + 2·Hk)·hd values`);
  if (q.buffer.size < T * Hq * hd * 4) throw new Error('qkvToCacheGpu: q holds fewer than T·Hq·hd values');
  if (kCache.buffer.size < (row0 + T) * kw * 4 || vCache.buffer.size < (row0 + T) * kw * 4) {
    throw new Error(`qkvToCacheGpu: the caches hold fewer than ${row0 + T} rows of ${kw}`);
  }
  const groups = T * (Hq + 2 * Hk);
  if (groups === 0) return q;
  const [gx, gy] = grid2d(groups);
  const bindings = [qkv, q, kCache, vCache, cosSin, ...(norm ? [norm.q.buffer, norm.k.buffer] : [])];
  ctx.run(code('qkv', norm !== undefined), params(T, Hq, Hk, hd, half, interleaved, norm, gx, row0), bindings, [gx, gy]);
  return q;
}
