/** Elementwise activations used by expert and dense FFNs. */

export const silu = (v: number): number => v / (1 + Math.exp(-v));
export const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));

/** Exact (erf) GELU. */
export function gelu(v: number): number {
  return 0.5 * v * (1 + erf(v / Math.SQRT2));
}

/** Abramowitz–Stegun 7.1.26 is too coarse for 1e-4 work; this is the Numerical Recipes erfc (|err| < 1.2e-7). */
export function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - r : r - 1;
}

export type GatedActivation = 'silu' | 'gelu' | 'gpt_oss';

/** h[i] = act(gate[i]) * up[i], in place into gate. GPT-OSS: clamped, (up + 1) · g · σ(α g). */
export function gatedActivation(kind: GatedActivation, gate: Float32Array, up: Float32Array, opts?: { alpha: number; limit: number }): Float32Array {
  const n = gate.length;
  if (kind === 'silu') for (let i = 0; i < n; i++) gate[i] = silu(gate[i]!) * up[i]!;
  else if (kind === 'gelu') for (let i = 0; i < n; i++) gate[i] = gelu(gate[i]!) * up[i]!;
  else {
    const alpha = opts?.alpha ?? 1.702;
    const limit = opts?.limit ?? 7.0;
    for (let i = 0; i < n; i++) {
      const g = Math.min(gate[i]!, limit);
      const u = Math.max(-limit, Math.min(up[i]!, limit));
      gate[i] = (u + 1) * (g * sigmoid(g * alpha));
    }
  }
  return gate;
}
