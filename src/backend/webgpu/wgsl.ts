/**
 * WGSL snippets shared by kernels: declaring and reading a weight of any storage dtype.
 *
 *   weightBinding(2, 'w', dtype)  →  @group(0) @binding(2) var<storage, read> w: array<f32|u32>;
 *   weightReader('w', dtype)      →  fn w_at(i: u32) -> f32   (element i of the flattened weight)
 *                                    fn w_at2(i: u32) -> vec2<f32>  (elements i, i+1; i even)
 */
import type { GpuWeightDType } from './weights.js';

export function weightBinding(binding: number, name: string, dtype: GpuWeightDType): string {
  return `@group(0) @binding(${binding}) var<storage, read> ${name}: array<${dtype === 'f32' ? 'f32' : 'u32'}>;`;
}

export function weightReader(name: string, dtype: GpuWeightDType): string {
  if (dtype === 'f32') {
    return `fn ${name}_at(i: u32) -> f32 { return ${name}[i]; }
fn ${name}_at2(i: u32) -> vec2<f32> { return vec2<f32>(${name}[i], ${name}[i + 1u]); }`;
  }
  if (dtype === 'f16') {
    return `fn ${name}_at(i: u32) -> f32 { return unpack2x16float(${name}[i >> 1u])[i & 1u]; }
fn ${name}_at2(i: u32) -> vec2<f32> { return unpack2x16float(${name}[i >> 1u]); }`;
  }
  return `fn ${name}_at(i: u32) -> f32 { let w = ${name}[i >> 1u]; return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u)); }
fn ${name}_at2(i: u32) -> vec2<f32> { let w = ${name}[i >> 1u]; return vec2<f32>(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u)); }`;
}

/** `f(i)` for i in [0, n), joined by newlines: kernels unrolled in the WGSL text, not left to the compiler. */
export function rep(n: number, f: (i: number) => string): string {
  return Array.from({ length: n }, (_, i) => f(i)).join('\n');
}

/** Ceil division. */
export const cdiv = (a: number, b: number): number => Math.ceil(a / b);

/** Most workgroups per grid dimension (WebGPU's default limit). */
export const MAX_GRID_DIM = 65535;

/**
 * `groups` workgroups as a [x, y] grid with x ≤ 65535 (2-D only past that). Kernels recover the flat workgroup index
 * as wid.y · x + wid.x, reading x from num_workgroups or from a parameter; the surplus of the last row exits early.
 */
export function grid2d(groups: number): [number, number] {
  const gx = Math.max(1, Math.min(groups, MAX_GRID_DIM));
  return [gx, Math.max(1, cdiv(groups, gx))];
}

/**
 * Memoise a WGSL generator by its (small, JSON-able) arguments, so a dispatch reuses the same string object: no
 * regeneration, and the pipeline cache's Map lookup hits V8's cached string hash instead of rehashing kilobytes.
 */
export function memoCode<A extends unknown[]>(build: (...args: A) => string): (...args: A) => string {
  const cache = new Map<string, string>();
  return (...args: A): string => {
    const key = JSON.stringify(args);
    let code = cache.get(key);
    if (code === undefined) cache.set(key, (code = build(...args)));
    return code;
  };
}
