/**
 * Auxiliary-loss-free load balancing (Wang, Gao, Zhao, Sun, Dai, "Auxiliary-Loss-Free Load Balancing Strategy for
 * Mixture-of-Experts", 2024, arXiv:2408.15664, Algorithm 1; used by DeepSeek-V3, arXiv:2412.19437 §2.1.2).
 * Each expert has a bias b_e added to its routing score for *selection only* (gates use the unbiased score).
 * After every training step, with c_e = tokens routed to e during the step and c̄ = mean_e c_e:
 *   b_e ← b_e + u · sign(c̄ − c_e)
 * so overloaded experts become less likely to be picked and idle ones more likely. No gradient is involved.
 */

/** Slots per routed FFN expert (ids ≥ E, zero-computation experts, are not counted). */
export function expertLoad(routings: readonly { experts: Int32Array }[], E: number): Float64Array {
  const c = new Float64Array(E);
  for (const r of routings) {
    for (let i = 0; i < r.experts.length; i++) {
      const e = r.experts[i]!;
      if (e >= 0 && e < E) c[e]! += 1;
    }
  }
  return c;
}

/** In place: bias[e] += rate · sign(mean(load) − load[e]). */
export function auxFreeBiasUpdate(bias: Float64Array, load: ArrayLike<number>, rate: number): void {
  const E = bias.length;
  if (load.length !== E) throw new Error(`aux-free bias: ${load.length} loads for ${E} experts`);
  let mean = 0;
  for (let e = 0; e < E; e++) mean += load[e]!;
  mean /= E;
  for (let e = 0; e < E; e++) bias[e]! += rate * Math.sign(mean - load[e]!);
}
