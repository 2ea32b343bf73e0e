/**
 * RMSNorm and LayerNorm over groups of G consecutive elements, G = w.shape[0] (a hidden row, or one head for the
 * per-head q/k norms: G = head_dim over [S, H·hd]). Same numerics as src/backend/cpu/norm.ts, in f32:
 *   rms:   y = (x · (1 / sqrt(mean(x²) + eps))) · w
 *   layer: y = (x − mean) · (1 / sqrt(mean((x − mean)²) + eps)) · w + b     (two passes, like the CPU code)
 *
 * One workgroup per group (64 threads when G ≤ 128, else 256): the threads stride over the group accumulating
 * their partial sums in f32, a workgroup-memory tree reduction combines them, then every thread writes its strided
 * elements. The group count is folded into a 2-D grid past 65535 workgroups. x, y are f32 tensors; w (and b) may
 * be stored in any weight dtype (normally f32). `out` may be `x` itself (in place: a variant with one read_write
 * binding; each element is read and then written by the same thread, after the reduction).
 *
 * The element count is rows · width, where width is the product of x's dimensions after the first (x.shape[0] for
 * a 1-D x, with rows = 1), unless `width` is passed; it must be a multiple of G.
 *
 * `addNorm` fuses the decoder's residual add into the norm that follows it: x ← x + s·a (stored back into x, the
 * residual stream, with elementwise.ts addScaled's arithmetic), then y = norm(x) from the updated values. Each thread
 * updates and then reads only its own strided elements, so the in-place update needs no barrier; one dispatch instead
 * of two (bench/gpu-host).
 */
import type { GpuContext, GpuTensor } from '../context.js';
import { Params, numelOf } from '../context.js';
import type { GpuWeight, GpuWeightDType } from '../weights.js';
import { weightBinding, weightReader, memoCode, grid2d } from '../wgsl.js';


export type NormKind = 'rms' | 'layer';
type Kind = NormKind;

function normCodeUncached(kind: Kind, WG: number, wd: GpuWeightDType, bd: GpuWeightDType | undefined, inPlace: boolean, add: boolean): string {
  const xAccess = inPlace || add ? 'read_write' : 'read';
  const out = inPlace ? 'x' : 'y';
  let nb = bd ? 4 : 3;
  const aDecl = add ? `@group(0) @binding(${nb++}) var<storage, read> a: array<f32>;` : '';
  const yDecl = inPlace ? '' : `@group(0) @binding(${nb}) var<storage, read_write> y: array<f32>;`;
  const addPass = add ? `  for (var i = li; i < G; i += WG) { x[base + i] = x[base + i] + p.s * a[base + i]; }\n` : '';
  const reduce = `  red[li] = s;
  workgroupBarrier();
  for (var st = WG / 2u; st > 0u; st = st >> 1u) {
    if (li < st) { red[li] += red[li + st]; }
    workgroupBarrier();
  }`;
  const body = kind === 'rms'
    ? `  var s = 0.0;
  for (var i = li; i < G; i += WG) { let v = x[base + i]; s += v * v; }
${reduce}
  let r = 1.0 / sqrt(red[0] / f32(G) + p.eps);
  for (var i = li; i < G; i += WG) { ${out}[base + i] = (x[base + i] * r) * w_at(i); }`
    : `  var s = 0.0;
  for (var i = li; i < G; i += WG) { s += x[base + i]; }
${reduce}
  let mean = red[0] / f32(G);
  workgroupBarrier();
  s = 0.0;
  for (var i = li; i < G; i += WG) { let d = x[base + i] - mean; s += d * d; }
${reduce}
  let r = 1.0 / sqrt(red[0] / f32(G) + p.eps);
  for (var i = li; i < G; i += WG) { ${out}[base + i] = (x[base + i] - mean) * r * w_at(i)${bd ? ' + b_at(i)' : ''}; }`;
  return `// ${add ? 'residual add + ' : ''}${kind} norm, ${WG} threads, ${wd} weight${bd ? `, ${bd} bias` : ''}${inPlace ? ', in place' : ''}
const WG = ${WG}u;
struct P { G: u32, groups: u32, eps: f32, s: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, ${xAccess}> x: array<f32>;
${weightBinding(2, 'w', wd)}
${bd ? weightBinding(3, 'b', bd) : ''}
${aDecl}
${yDecl}
${weightReader('w', wd)}
${bd ? weightReader('b', bd) : ''}
var<workgroup> red: array<f32, ${WG}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let g = wid.y * nwg.x + wid.x;
  if (g >= p.groups) { return; }
  let G = p.G;
  let base = g * G;
${addPass}${body}
}
`;
}

function runNorm(ctx: GpuContext, kind: Kind, x: GpuTensor, rows: number, w: GpuWeight, b: GpuWeight | undefined, eps: number,
  out: GpuTensor | undefined, width: number | undefined, add?: { a: GpuTensor; s: number }): GpuTensor {
  const name = add ? 'addNorm' : kind === 'rms' ? 'rmsNorm' : 'layerNorm';
  const G = w.shape[0]!;
  if (w.shape.length !== 1 || G < 1) throw new Error(`${name}: weight ${w.name} has shape [${w.shape.join(', ')}], expected [G]`);
  if (b && (b.shape.length !== 1 || b.shape[0] !== G)) throw new Error(`${name}: bias ${b.name} has shape [${b.shape.join(', ')}], expected [${G}]`);
  const W = width ?? (x.shape.length >= 2 ? numelOf(x.shape.slice(1)) : numelOf(x.shape) / Math.max(rows, 1));
  const total = rows * W;
  if (!Number.isInteger(W) || total % G !== 0) throw new Error(`${name}: ${rows}×${W} elements do not split into groups of ${G}`);
  if (x.dtype !== 'f32') throw new Error(`${name}: x must be f32`);
  if (x.buffer.size < total * 4) throw new Error(`${name}: x holds ${x.buffer.size} bytes, needs ${total} f32`);
  const y = out ?? ctx.tensor(x.shape.length >= 2 ? [rows, ...x.shape.slice(1)] : [total]);
  if (y.buffer.size < total * 4) throw new Error(`${name}: out holds ${y.buffer.size} bytes, needs ${total} f32`);
  const groups = total / G;
  if (groups === 0) return y;
  const inPlace = y.buffer === x.buffer;
  if (add) {
    if (inPlace) throw new Error(`${name}: out must not be x (x is the residual stream, updated in place)`);
    if (add.a.buffer === x.buffer || add.a.buffer === y.buffer) throw new Error(`${name}: a must be a different buffer from x and out`);
    if (add.a.buffer.size < total * 4) throw new Error(`${name}: a holds ${add.a.buffer.size} bytes, needs ${total} f32`);
  }
  const WG = G <= 128 ? 64 : 256;
  const bindings = [x, w.buffer, ...(b ? [b.buffer] : []), ...(add ? [add.a] : []), ...(inPlace ? [] : [y])];
  const params = new Params().u32(G).u32(groups).f32(eps).f32(add?.s ?? 0);
  ctx.run(normCode(kind, WG, w.dtype, b?.dtype, inPlace, add !== undefined), params, bindings, grid2d(groups));
  return y;
}

/**
 * RMSNorm of rows·width elements of x in groups of G = w.shape[0]: y = (x / sqrt(mean(x²) + eps)) · w.
 * Returns `out` (may be x: in place) or a new tensor shaped like x's first `rows` rows.
 */
export function rmsNorm(ctx: GpuContext, x: GpuTensor, rows: number, w: GpuWeight, eps: number, out?: GpuTensor, width?: number): GpuTensor {
  return runNorm(ctx, 'rms', x, rows, w, undefined, eps, out, width);
}

/**
 * LayerNorm of rows·width elements of x in groups of G = w.shape[0]: y = (x − mean) / sqrt(var + eps) · w (+ b).
 * Returns `out` (may be x: in place) or a new tensor shaped like x's first `rows` rows.
 */
export function layerNorm(ctx: GpuContext, x: GpuTensor, rows: number, w: GpuWeight, b: GpuWeight | undefined, eps: number,
  out?: GpuTensor, width?: number): GpuTensor {
  return runNorm(ctx, 'layer', x, rows, w, b, eps, out, width);
}

/**
 * Residual add fused with the norm after it: x += s · a (in place, rows·width elements), then the RMSNorm (no `b`
 * … kind 'rms') or LayerNorm of the updated x into a new tensor (or `out`, which must not be x), returned.
 */
export function addNorm(ctx: GpuContext, kind: Kind, x: GpuTensor, a: GpuTensor, s: number, rows: number, w: GpuWeight,
  b: GpuWeight | undefined, eps: number, out?: GpuTensor, width?: number): GpuTensor {
  if (kind === 'rms' && b) throw new Error('addNorm: RMSNorm takes no bias');
  return runNorm(ctx, kind, x, rows, w, b, eps, out, width, { a, s });
}

// Generated WGSL memoised per configuration (see memoCode).
const normCode = memoCode(normCodeUncached);
