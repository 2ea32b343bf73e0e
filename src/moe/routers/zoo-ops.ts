/**
 * Autograd ops the router zoo needs that the shared op set (src/train/autograd/ops) does not have.
 *
 * segmentNormalize: out_i = g_i / (Σ_{j: seg_j = seg_i} g_j + eps) for slots with seg_i ≥ 0, out_i = g_i where
 * seg_i < 0 (pass-through). This is "renormalise the chosen gates of each token" (seg = token) and "normalise each row"
 * (seg = row index of a flattened matrix) in one op. Backward (S = segment sum + eps, y = out):
 *   dg_j = (dy_j − Σ_{i ∈ seg(j)} dy_i · y_i) / S.
 */
import { alloc, result, type Var } from '../../train/autograd/var.js';

export function segmentNormalize(g: Var, seg: Int32Array, numSeg: number, eps = 0): Var {
  const n = g.size;
  if (seg.length !== n) throw new Error(`segmentNormalize: ${seg.length} segment ids for ${n} values`);
  const S = new Float64Array(numSeg);
  for (let i = 0; i < n; i++) {
    const s = seg[i]!;
    if (s >= numSeg) throw new Error(`segmentNormalize: segment ${s} of ${numSeg}`);
    if (s >= 0) S[s]! += g.data[i]!;
  }
  for (let s = 0; s < numSeg; s++) S[s]! += eps;
  const out = alloc(g.data, n);
  for (let i = 0; i < n; i++) {
    const s = seg[i]!;
    out[i] = s >= 0 ? g.data[i]! / S[s]! : g.data[i]!;
  }
  return result('segmentNormalize', out, g.shape, [g], (o) => {
    const dy = o.grad!;
    const dot = new Float64Array(numSeg);
    for (let i = 0; i < n; i++) {
      const s = seg[i]!;
      if (s >= 0) dot[s]! += dy[i]! * out[i]!;
    }
    const gg = g.g();
    for (let i = 0; i < n; i++) {
      const s = seg[i]!;
      gg[i]! += s >= 0 ? (dy[i]! - dot[s]!) / S[s]! : dy[i]!;
    }
  });
}
