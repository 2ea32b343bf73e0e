/**
 * MoE combine on the GPU: out[t, d] = Σ_j gates[t, j] · y[t·k + j, d] over the k slots of each token, in j order —
 * deterministic, no float atomics (each output element is owned by one thread). y holds the experts' outputs at
 * the slots' original positions (grouped-gemm.ts writes them there). Slots whose expert id is outside [0, E) were
 * not computed (moe-permute.ts leaves them out) and contribute nothing.
 *
 * Layout: one thread per output element of the chunk (workgroups of 256, folded into a 2-D grid). Works on a chunk
 * of tokens [tokenBase, tokenBase + T): routing and out are indexed globally, y locally (slot − tokenBase·k).
 * Note the CPU (src/moe/experts.ts) adds the slots in expert order; the sum order differs, not the terms.
 */
import type { GpuContext, GpuTensor } from '../context.js';
import { Params } from '../context.js';
import { cdiv, grid2d } from '../wgsl.js';

const WG = 256;

const COMBINE_WGSL = `
struct P { T: u32, D: u32, k: u32, E: u32, tokenBase: u32, rowStride: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> experts: array<i32>;
@group(0) @binding(3) var<storage, read> gates: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.rowStride;
  if (i >= p.T * p.D) { return; }
  let t = i / p.D;
  let d = i % p.D;
  let sb = (p.tokenBase + t) * p.k;
  var acc = 0.0;
  for (var j = 0u; j < p.k; j++) {
    let v = experts[sb + j];
    if (v >= 0 && u32(v) < p.E) { acc += gates[sb + j] * y[(t * p.k + j) * p.D + d]; }
  }
  out[(p.tokenBase + t) * p.D + d] = acc;
}`;

/**
 * out[tokenBase + t, :] = Σ_j gates · y for t < T (overwrites those rows of out [·, D]). y is [T·k, D] for the chunk.
 */
export function moeCombineGpu(
  ctx: GpuContext, y: GpuTensor, experts: GpuTensor, gates: GpuTensor, tokenBase: number, T: number, D: number, k: number, E: number,
  out: GpuTensor,
): void {
  if (T === 0 || D === 0) return;
  const [gx, gy] = grid2d(cdiv(T * D, WG));
  ctx.run(COMBINE_WGSL, new Params().u32(T).u32(D).u32(k).u32(E).u32(tokenBase).u32(gx * WG), [y, experts, gates, out], [gx, gy]);
}
