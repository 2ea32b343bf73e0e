/**
 * Gradient utilities: global-norm clipping and gradient accumulation.
 *
 * Accumulation: gradients accumulate (+=) into `Var.grad` across backward passes, so N micro-batches are
 *   for each micro-batch: backward(loss)        // sums the N gradients
 *   scaleGrads(params, 1 / N)                  // mean (or use a loss already divided by N and skip this)
 *   clipGradNorm(params, maxNorm); optimizer.step(lr); zeroGrads(params)
 * `GradAccumulator` wraps that bookkeeping.
 */
import type { Var } from '../autograd/var.js';

/** L2 norm of all gradients together (float64 sum); parameters without a gradient count as zero. */
export function globalGradNorm(params: readonly Var[]): number {
  let sum = 0;
  for (const p of params) {
    const g = p.grad;
    if (!g) continue;
    for (let i = 0; i < g.length; i++) sum += g[i]! * g[i]!;
  }
  return Math.sqrt(sum);
}

/**
 * Scale all gradients so their global L2 norm is at most `maxNorm` (PyTorch's `clip_grad_norm_`: factor
 * maxNorm / (norm + 1e-6), applied only when it is < 1). Returns the norm before clipping. A non-finite norm leaves
 * the gradients untouched; check the return value and skip the step.
 */
export function clipGradNorm(params: readonly Var[], maxNorm: number): number {
  if (!(maxNorm > 0)) throw new RangeError(`max gradient norm must be > 0, got ${maxNorm}`);
  const norm = globalGradNorm(params);
  if (!Number.isFinite(norm)) return norm;
  const factor = maxNorm / (norm + 1e-6);
  if (factor < 1) scaleGrads(params, factor);
  return norm;
}

/** Multiply every gradient by `factor` (in place). */
export function scaleGrads(params: readonly Var[], factor: number): void {
  for (const p of params) {
    const g = p.grad;
    if (!g) continue;
    for (let i = 0; i < g.length; i++) g[i] = g[i]! * factor;
  }
}

/** Drop every gradient. */
export function zeroGrads(params: readonly Var[]): void {
  for (const p of params) p.zeroGrad();
}

/** True when every gradient value is finite. */
export function gradsFinite(params: readonly Var[]): boolean {
  for (const p of params) {
    const g = p.grad;
    if (!g) continue;
    for (let i = 0; i < g.length; i++) if (!Number.isFinite(g[i]!)) return false;
  }
  return true;
}

/**
 * Counts micro-batches: call `micro()` after each backward pass; it returns true when `microSteps` gradients have
 * been summed, after scaling them by 1 / microSteps (so they are the mean). Then clip, step, and call `reset()`
 * (which also drops the gradients).
 */
export class GradAccumulator {
  private count = 0;
  constructor(readonly params: readonly Var[], readonly microSteps: number) {
    if (!Number.isSafeInteger(microSteps) || microSteps < 1) throw new RangeError(`micro-steps must be a positive integer, got ${microSteps}`);
  }

  /** Micro-batches summed since the last reset. */
  get pending(): number {
    return this.count;
  }

  micro(): boolean {
    if (this.count >= this.microSteps) throw new Error('GradAccumulator: call reset() after the optimizer step');
    this.count++;
    if (this.count < this.microSteps) return false;
    if (this.microSteps > 1) scaleGrads(this.params, 1 / this.microSteps);
    return true;
  }

  reset(): void {
    this.count = 0;
    zeroGrads(this.params);
  }
}
