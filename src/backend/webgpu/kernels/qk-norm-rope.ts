/**
 * GQA query/key preparation in one dispatch: q[T, Hq, hd] and k[T, Hk, hd], in place, each head optionally
 * RMS-normalised over its hd elements (Qwen3's per-head q_norm / k_norm) and then rotated by RoPE — the same function
 * as norm.ts's rmsNorm (groups of hd) followed by rope.ts's applyRopeGpu on q and on k, which take four dispatches
 * (two without the norms). Decode records ~20 dispatches a layer and each costs the host several microseconds
 * through Dawn (bench/gpu-host), so merging these four into one is worth a kernel.
 *
 * One workgroup of 64 threads per (token, head) of q then of k (T·(Hq + Hk) workgroups, folded into a 2-D grid):
 *   1. the head's hd elements go to workgroup memory (threads stride by 64);
 *   2. with the norm: partial Σx² per thread in the same order as norm.ts with 64 threads, a workgroup tree reduction,
 *      r = 1 / sqrt(Σ / hd + eps), x ← (x · r) · w — bit-for-bit the rmsNorm kernel's arithmetic for hd ≤ 128;
 *   3. each thread rotates its pairs (i, i + half) (`half` layout) or (2i, 2i + 1) (interleaved) with (c, s) =
 *      cosSin[t, i] exactly like rope.ts, and writes them back; dims past 2·half (partial rotary) are written back
 *      normalised, unrotated.
 * q and k are separate bindings, so the workgroup branches (uniformly) on which one it owns.
 *
 * Limits: hd ≤ QK_NORM_ROPE_MAX_HD (workgroup memory), 2·half ≤ hd; callers fall back to the separate kernels
 * beyond (WebGpuOps.qkNormRope). Norm weights are f32 vectors of length hd.
 */
import type { GpuContext, GpuTensor } from '../context.js';
import { Params } from '../context.js';
import type { GpuWeight } from '../weights.js';
import { grid2d, memoCode } from '../wgsl.js';

const WG = 64;
/** Largest head dimension the fused kernel holds in workgroup memory. */
export const QK_NORM_ROPE_MAX_HD = 1024;

function codeUncached(norm: boolean): string {
  const load = (dst: string, src: string): string => `if (isQ) { ${dst} = q[${src}]; } else { ${dst} = k[${src}]; }`;
  const store = (idx: string, v: string): string => `if (isQ) { q[${idx}] = ${v}; } else { k[${idx}] = ${v}; }`;
  return `// q/k ${norm ? 'per-head RMSNorm + ' : ''}RoPE, one workgroup per (token, head)
const WG = ${WG}u;
struct P { T: u32, Hq: u32, Hk: u32, hd: u32, half: u32, interleaved: u32, eps: f32, gx: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> q: array<f32>;
@group(0) @binding(2) var<storage, read_write> k: array<f32>;
@group(0) @binding(3) var<storage, read> cs: array<f32>;
${norm ? `@group(0) @binding(4) var<storage, read> wq: array<f32>;
@group(0) @binding(5) var<storage, read> wk: array<f32>;` : ''}
var<workgroup> xs: array<f32, ${QK_NORM_ROPE_MAX_HD}>;
${norm ? `var<workgroup> red: array<f32, ${WG}>;` : ''}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let heads = p.Hq + p.Hk;
  let g = wid.y * p.gx + wid.x;
  if (g >= p.T * heads) { return; }
  let t = g / heads;
  let h = g % heads;
  let isQ = h < p.Hq;
  var base = 0u;
  if (isQ) { base = (t * p.Hq + h) * p.hd; } else { base = (t * p.Hk + h - p.Hq) * p.hd; }
  let hd = p.hd;
  for (var i = li; i < hd; i += WG) { var v = 0.0; ${load('v', 'base + i')} xs[i] = v; }
${norm ? `  var s = 0.0;
  for (var i = li; i < hd; i += WG) { let v = xs[i]; s += v * v; }
  red[li] = s;
  workgroupBarrier();
  for (var st = WG / 2u; st > 0u; st = st >> 1u) {
    if (li < st) { red[li] += red[li + st]; }
    workgroupBarrier();
  }
  let r = 1.0 / sqrt(red[0] / f32(hd) + p.eps);
  for (var i = li; i < hd; i += WG) {
    var w = 0.0;
    if (isQ) { w = wq[i]; } else { w = wk[i]; }
    xs[i] = (xs[i] * r) * w;
  }` : ''}
  workgroupBarrier();
  for (var i = li; i < p.half; i += WG) {
    let c = cs[(t * p.half + i) * 2u];
    let sn = cs[(t * p.half + i) * 2u + 1u];
    var a: u32;
    var b: u32;
    if (p.interleaved != 0u) { a = 2u * i; b = a + 1u; } else { a = i; b = i + p.half; }
    let x1 = xs[a];
    let x2 = xs[b];
    ${store('base + a', 'x1 * c - x2 * sn')}
    ${store('base + b', 'x2 * c + x1 * sn')}
  }
${norm ? `  for (var i = 2u * p.half + li; i < hd; i += WG) { ${store('base + i', 'xs[i]')} }` : ''}
}
`;
}

const code = memoCode(codeUncached);

/**
 * In place: q[T, Hq, hd], k[T, Hk, hd] ← RoPE(RMSNorm_head(·)) with a [T, half, 2] cos/sin table (ropeCosSin);
 * without `norm`, RoPE only. Norm weights: f32 [hd].
 */
export function qkNormRopeGpu(
  ctx: GpuContext, q: GpuTensor, k: GpuTensor, T: number, Hq: number, Hk: number, hd: number, cosSin: GpuTensor,
  half: number, interleaved: boolean, norm?: { q: GpuWeight; k: GpuWeight; eps: number },
): void {
  if (hd > QK_NORM_ROPE_MAX_HD) throw new Error(`qkNormRopeGpu: head dim ${hd} exceeds ${QK_NORM_ROPE_MAX_HD}`);
  if (2 * half > hd) throw new Error(`qkNormRopeGpu: 2·${half} rotated dims exceed head dim ${hd}`);
  if (q.buffer.size < T * Hq * hd * 4 || k.buffer.size < T * Hk * hd * 4) throw new Error(`qkNormRopeGpu: q or k holds fewer than T·H·hd values`);
  if (norm) {
    for (const w of [norm.q, norm.k]) {
      if (w.dtype !== 'f32' || w.shape.length !== 1 || w.shape[0] !== hd) {
        throw new Error(`qkNormRopeGpu: norm weight ${w.name} is ${w.dtype} [${w.shape}], expected f32 [${hd}]`);
      }
    }
  }
  const groups = T * (Hq + Hk);
  if (groups === 0) return;
  const [gx, gy] = grid2d(groups);
  const params = new Params().u32(T).u32(Hq).u32(Hk).u32(hd).u32(half).u32(interleaved ? 1 : 0).f32(norm?.eps ?? 0).u32(gx);
  const bindings = norm ? [q, k, cosSin, norm.q.buffer, norm.k.buffer] : [q, k, cosSin];
  ctx.run(code(norm !== undefined), params, bindings, [gx, gy]);
}
