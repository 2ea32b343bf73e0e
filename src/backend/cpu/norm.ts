/** RMSNorm and LayerNorm over groups of the last dimension (group = weight length, e.g. per-head q/k norms). */

/** out = x / sqrt(mean(x²) + eps) * w, over consecutive groups of w.length elements. */
export function rmsNorm(x: Float32Array, w: Float32Array, eps: number, out = new Float32Array(x.length)): Float32Array {
  const G = w.length;
  if (x.length % G !== 0) throw new Error(`rmsNorm: ${x.length} elements do not split into groups of ${G}`);
  for (let base = 0; base < x.length; base += G) {
    let ss = 0;
    for (let i = 0; i < G; i++) ss += x[base + i]! * x[base + i]!;
    const r = 1 / Math.sqrt(ss / G + eps);
    for (let i = 0; i < G; i++) out[base + i] = Math.fround(x[base + i]! * r) * w[i]!;
  }
  return out;
}

/** out = (x − mean) / sqrt(var + eps) * w + b, over rows of w.length elements. */
export function layerNorm(x: Float32Array, w: Float32Array, b: Float32Array | undefined, eps: number, out = new Float32Array(x.length)): Float32Array {
  const G = w.length;
  if (x.length % G !== 0) throw new Error(`layerNorm: ${x.length} elements do not split into rows of ${G}`);
  for (let base = 0; base < x.length; base += G) {
    let mean = 0;
    for (let i = 0; i < G; i++) mean += x[base + i]!;
    mean /= G;
    let v = 0;
    for (let i = 0; i < G; i++) { const d = x[base + i]! - mean; v += d * d; }
    const r = 1 / Math.sqrt(v / G + eps);
    for (let i = 0; i < G; i++) out[base + i] = (x[base + i]! - mean) * r * w[i]! + (b ? b[i]! : 0);
  }
  return out;
}
