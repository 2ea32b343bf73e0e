/**
 * Rotary position embeddings on the GPU, applied in place to x[T, H, headDim].
 *
 * The cos/sin table is built on the host by `ropeCosSin` exactly as the CPU path does (`applyRope` in
 * src/backend/cpu/rope.ts, with `rope()`'s longrope short/long choice from src/nn/rope.ts): for each position t and
 * frequency i, ang = fround(pos·invFreq[i]), c = fround(cos(ang)·attentionScale), s = fround(sin(ang)·attentionScale).
 * Computing the angles in float64 on the host (rather than with WGSL's lower-precision cos/sin of large arguments)
 * keeps long positions bit-identical to the reference tables; the table is only T × half × 2 floats.
 *
 * Kernel: one invocation per rotated pair (t, h, i) — T·H·half invocations in 64-wide workgroups, the workgroup
 * grid folded into x/y so it never exceeds 65535 per dimension. Invocation (t, h, i) reads (c, s) = cosSin[t, i]
 * and rotates x[a], x[b] with a = (t·H + h)·headDim + offset + i, b = a + half (`half` / rotate_half layout) or
 * a = … + offset + 2i, b = a + 1 (interleaved / complex layout). Each element is touched by exactly one invocation,
 * so the in-place update is race-free.
 *
 * Limits: offset + 2·half ≤ headDim (checked); T·H·half < 2^32. The rotation is computed in f32 (the CPU rounds a
 * float64 result once), so results can differ from the CPU by ~1–2 ulp of the inputs' magnitude.
 */
import type { GpuContext, GpuTensor } from '../context.js';
import { Params } from '../context.js';
import { cdiv, grid2d } from '../wgsl.js';
import { ropeCosSin, type RopeTable } from '../../../nn/rope.js';

export { ropeCosSin };

const WG = 64;

/** Upload `ropeCosSin(table, positions)` as a [T, half, 2] tensor (release it after the last `applyRopeGpu`). */
export function uploadRopeCosSin(ctx: GpuContext, table: RopeTable, positions: ArrayLike<number>): GpuTensor {
  const half = table.invFreq.length;
  return ctx.upload(ropeCosSin(table, positions), [positions.length, half, 2]);
}

const ROPE_WGSL = `struct P { n: u32, half: u32, heads: u32, headDim: u32, offset: u32, interleaved: u32, strideY: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> cs: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let idx = (wg.y * p.strideY + wg.x) * ${WG}u + lid;
  if (idx >= p.n) { return; }
  let i = idx % p.half;
  let th = idx / p.half;          // t * H + h
  let t = th / p.heads;
  let c = cs[(t * p.half + i) * 2u];
  let s = cs[(t * p.half + i) * 2u + 1u];
  let base = th * p.headDim + p.offset;
  var a: u32;
  var b: u32;
  if (p.interleaved != 0u) { a = base + 2u * i; b = a + 1u; } else { a = base + i; b = a + p.half; }
  let x1 = x[a];
  let x2 = x[b];
  x[a] = x1 * c - x2 * s;
  x[b] = x2 * c + x1 * s;
}`;

/**
 * Rotate x[T, H, headDim] in place with a [T, half, 2] (cos, sin) table (from `ropeCosSin`), rotating the 2·half
 * dims that start at `offset` within each head (MLA rotates only the trailing qk_rope dims).
 */
export function applyRopeGpu(
  ctx: GpuContext, x: GpuTensor, T: number, H: number, headDim: number,
  cosSin: GpuTensor, half: number, interleaved: boolean, offset = 0,
): void {
  if (offset + 2 * half > headDim) throw new Error(`applyRopeGpu: offset ${offset} + 2·${half} rotated dims exceed headDim ${headDim}`);
  const n = T * H * half;
  if (n === 0) return;
  if (n >= 2 ** 32) throw new Error(`applyRopeGpu: ${n} pairs exceed the 32-bit index range`);
  const groups = cdiv(n, WG);
  const [gx, gy] = grid2d(groups);
  const params = new Params().u32(n).u32(half).u32(H).u32(headDim).u32(offset).u32(interleaved ? 1 : 0).u32(gx);
  ctx.run(ROPE_WGSL, params, [x, cosSin], [gx, gy]);
}
