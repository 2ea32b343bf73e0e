/**
 * Elementwise kernels: residual add, scale, gated activations (same math as `gatedActivation` in
 * src/backend/cpu/activations.ts), embedding gather, and strided column copies.
 *
 * Layout: one thread per output element, 256 threads per workgroup; the workgroup count is folded into a 2-D grid
 * (x ≤ 65535, y = as many rows as needed) once it passes 65535, and threads past the end return. All indices are u32
 * (element counts < 2³²); tensors are bound whole, so each must fit the device's max storage binding size.
 * In-place kernels bind their target once as read_write; the source tensors of addScaled/gatedAct/copyCols must be
 * different buffers from the target (WebGPU forbids a writable binding aliasing another binding; this throws).
 *
 * GELU is the exact erf form; WGSL has no erf, so it uses the Numerical Recipes erfc polynomial of the CPU code
 * (|err| < 1.2e-7), evaluated in f32.
 */
import type { GpuContext, GpuTensor } from '../context.js';
import { Params } from '../context.js';
import type { GpuWeight, GpuWeightDType } from '../weights.js';
import { cdiv, weightBinding, weightReader, memoCode, grid2d } from '../wgsl.js';

const WG = 256;
/** A grid of ≥ n/256 workgroups, 2-D when 1-D would exceed 65535. */
const grid = (n: number): [number, number] => grid2d(cdiv(n, WG));

/** The shader's flat element index (pairs with `grid`). */
const MAIN = `@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * ${WG}u + gid.x;`;

function needs(t: GpuTensor, elems: number, what: string, fn: string): void {
  if (t.buffer.size < elems * 4) throw new Error(`${fn}: ${what} holds ${t.buffer.size} bytes, needs ${elems} elements`);
}

function distinct(a: GpuTensor, b: GpuTensor, fn: string): void {
  if (a.buffer === b.buffer) throw new Error(`${fn}: the source and destination must be different buffers`);
}

const ADD_SCALED = `struct P { n: u32, s: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> h: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
${MAIN}
  if (i >= p.n) { return; }
  h[i] = h[i] + p.s * a[i];
}`;

/** h[i] += s · a[i] for i < n (residual add), in place. */
export function addScaled(ctx: GpuContext, h: GpuTensor, a: GpuTensor, n: number, s: number): void {
  needs(h, n, 'h', 'addScaled');
  needs(a, n, 'a', 'addScaled');
  distinct(h, a, 'addScaled');
  if (n === 0) return;
  ctx.run(ADD_SCALED, new Params().u32(n).f32(s), [h, a], grid(n));
}

const ADD_SIGMOID_GATED = `struct P { n: u32, D: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> s: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
${MAIN}
  if (i >= p.n) { return; }
  out[i] = out[i] + s[i] / (1.0 + exp(-g[i / p.D]));
}`;

/** out[t, :] += sigmoid(g[t]) · s[t, :] over [T, D], in place (Qwen2-MoE's gated shared expert). */
export function addSigmoidGated(ctx: GpuContext, out: GpuTensor, s: GpuTensor, g: GpuTensor, T: number, D: number): void {
  const n = T * D;
  needs(out, n, 'out', 'addSigmoidGated');
  needs(s, n, 's', 'addSigmoidGated');
  needs(g, T, 'g', 'addSigmoidGated');
  distinct(out, s, 'addSigmoidGated');
  if (n === 0) return;
  ctx.run(ADD_SIGMOID_GATED, new Params().u32(n).u32(D), [out, s, g], grid(n));
}

const SCALE = `struct P { n: u32, s: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
${MAIN}
  if (i >= p.n) { return; }
  x[i] = x[i] * p.s;
}`;

/** x[i] *= s for i < n. */
export function scaleInPlace(ctx: GpuContext, x: GpuTensor, n: number, s: number): void {
  needs(x, n, 'x', 'scaleInPlace');
  if (n === 0) return;
  ctx.run(SCALE, new Params().u32(n).f32(s), [x], grid(n));
}

const CLAMP = `struct P { n: u32, limit: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
${MAIN}
  if (i >= p.n) { return; }
  x[i] = clamp(x[i], -p.limit, p.limit);
}`;

/** x[i] = clamp(x[i], -limit, limit) for i < n, in place (OLMoE's clip_qkv). */
export function clampInPlace(ctx: GpuContext, x: GpuTensor, n: number, limit: number): void {
  needs(x, n, 'x', 'clampInPlace');
  if (n === 0) return;
  ctx.run(CLAMP, new Params().u32(n).f32(limit), [x], grid(n));
}

export type GatedActKind = 'silu' | 'gelu' | 'gpt_oss';

const ACT: Record<GatedActKind, string> = {
  silu: `fn act(g: f32, u: f32) -> f32 { return g / (1.0 + exp(-g)) * u; }`,
  gelu: `// Numerical Recipes erfc (as src/backend/cpu/activations.ts).
fn erf_(x: f32) -> f32 {
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.5 * z);
  let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return select(r - 1.0, 1.0 - r, x >= 0.0);
}
fn act(g: f32, u: f32) -> f32 { return 0.5 * g * (1.0 + erf_(g * 0.70710678118654752)) * u; }`,
  gpt_oss: `fn act(gate: f32, up: f32) -> f32 {
  let g = min(gate, p.limit);
  let u = clamp(up, -p.limit, p.limit);
  return (u + 1.0) * (g / (1.0 + exp(-g * p.alpha)));
}`,
};

function gatedCodeUncached(kind: GatedActKind): string {
  return `// gated activation: ${kind}
struct P { n: u32, alpha: f32, limit: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> g: array<f32>;
@group(0) @binding(2) var<storage, read> u: array<f32>;
${ACT[kind]}
${MAIN}
  if (i >= p.n) { return; }
  g[i] = act(g[i], u[i]);
}`;
}

/**
 * g[i] = act(g[i]) · u[i] for i < n, in place into g. silu: g·σ(g); gelu: exact erf GELU; gpt_oss: with
 * g' = min(g, limit), u' = clamp(u, −limit, limit): (u' + 1) · g' · σ(α g').
 */
export function gatedAct(ctx: GpuContext, g: GpuTensor, u: GpuTensor, n: number, kind: GatedActKind, alpha = 1.702, limit = 7): void {
  needs(g, n, 'g', 'gatedAct');
  needs(u, n, 'u', 'gatedAct');
  distinct(g, u, 'gatedAct');
  if (!(kind in ACT)) throw new Error(`gatedAct: unknown activation ${String(kind)}`);
  if (n === 0) return;
  ctx.run(gatedCode(kind), new Params().u32(n).f32(alpha).f32(limit), [g, u], grid(n));
}

function embedCodeUncached(dtype: GpuWeightDType): string {
  return `// embedding gather, ${dtype} table
struct P { n: u32, D: u32, mult: f32 }
@group(0) @binding(0) var<uniform> p: P;
${weightBinding(1, 'tbl', dtype)}
@group(0) @binding(2) var<storage, read> ids: array<i32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
${weightReader('tbl', dtype)}
${MAIN}
  if (i >= p.n * p.D) { return; }
  let row = i / p.D;
  let col = i - row * p.D;
  y[i] = tbl_at(u32(ids[row]) * p.D + col) * p.mult;
}`;
}

/**
 * out[t, :] = table[ids[t], :] · mult for t < n: a new [n, D] f32 tensor. table is [V, D] in any weight dtype;
 * ids is an i32 tensor whose values the caller has checked to lie in [0, V).
 */
export function embed(ctx: GpuContext, table: GpuWeight, ids: GpuTensor, n: number, D: number, mult: number): GpuTensor {
  if (table.shape.length !== 2 || table.shape[1] !== D) throw new Error(`embed: ${table.name} has shape [${table.shape.join(', ')}], expected [V, ${D}]`);
  if (ids.dtype !== 'i32') throw new Error('embed: ids must be an i32 tensor');
  needs(ids, n, 'ids', 'embed');
  const out = ctx.tensor([n, D]);
  if (n * D === 0) return out;
  ctx.run(embedCode(table.dtype), new Params().u32(n).u32(D).f32(mult), [table.buffer, ids, out], grid(n * D));
  return out;
}

const COPY_COLS = `// strided column copy (32-bit words, any dtype)
struct P { count: u32, total: u32, srcWidth: u32, srcFrom: u32, dstWidth: u32, dstFrom: u32, srcRowDiv: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
${MAIN}
  if (i >= p.total) { return; }
  let r = i / p.count;
  let c = i - r * p.count;
  dst[r * p.dstWidth + p.dstFrom + c] = src[(r / p.srcRowDiv) * p.srcWidth + p.srcFrom + c];
}`;

/**
 * For r < rows, c < count: dst[r·dstWidth + dstFrom + c] = src[⌊r / srcRowDiv⌋·srcWidth + srcFrom + c]
 * (split / assemble column blocks, e.g. MLA key parts; srcRowDiv > 1 repeats a source row, e.g. one rope key
 * broadcast over heads). A bit copy of 32-bit elements: any tensor dtype. src and dst must be different buffers.
 */
export function copyCols(ctx: GpuContext, src: GpuTensor, srcWidth: number, srcFrom: number, dst: GpuTensor, dstWidth: number,
  dstFrom: number, count: number, rows: number, srcRowDiv = 1): void {
  if (rows === 0 || count === 0) return;
  if (!(srcRowDiv >= 1) || !Number.isInteger(srcRowDiv)) throw new Error(`copyCols: srcRowDiv ${srcRowDiv} must be a positive integer`);
  if (srcFrom + count > srcWidth || dstFrom + count > dstWidth) {
    throw new Error(`copyCols: columns [${srcFrom}, ${srcFrom + count}) → [${dstFrom}, ${dstFrom + count}) exceed widths ${srcWidth} / ${dstWidth}`);
  }
  distinct(src, dst, 'copyCols');
  needs(src, (Math.floor((rows - 1) / srcRowDiv)) * srcWidth + srcFrom + count, 'src', 'copyCols');
  needs(dst, (rows - 1) * dstWidth + dstFrom + count, 'dst', 'copyCols');
  const total = rows * count;
  const params = new Params().u32(count).u32(total).u32(srcWidth).u32(srcFrom).u32(dstWidth).u32(dstFrom).u32(srcRowDiv);
  ctx.run(COPY_COLS, params, [src, dst], grid(total));
}

// Generated WGSL memoised per configuration (see memoCode).
const gatedCode = memoCode(gatedCodeUncached);
const embedCode = memoCode(embedCodeUncached);
