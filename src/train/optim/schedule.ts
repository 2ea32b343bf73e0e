/**
 * Learning-rate schedule: linear warmup, then cosine decay to a floor.
 *
 * Steps are 0-based (step k is the k-th optimizer update):
 *   k < warmup:            lr = maxLr · (k + 1) / warmup           (the first update already moves; k = warmup−1 → maxLr)
 *   warmup ≤ k < total:    lr = minLr + ½(maxLr − minLr)(1 + cos(π · (k − warmup) / (total − warmup)))
 *   k ≥ total:             lr = minLr
 * So lr(warmup) = maxLr, lr at the middle of the decay = (maxLr + minLr)/2, lr(total) = minLr.
 */
export interface CosineScheduleOptions {
  maxLr: number;
  /** The floor reached at `totalSteps` (default 0). */
  minLr?: number;
  warmupSteps: number;
  /** Step at which the decay reaches `minLr` (warmup included). */
  totalSteps: number;
}

export type LrSchedule = (step: number) => number;

export function cosineWithWarmup(opts: CosineScheduleOptions): LrSchedule {
  const { maxLr, warmupSteps, totalSteps } = opts;
  const minLr = opts.minLr ?? 0;
  if (!Number.isFinite(maxLr) || maxLr < 0 || !Number.isFinite(minLr) || minLr < 0 || minLr > maxLr) throw new RangeError(`need 0 ≤ minLr ≤ maxLr, got minLr ${minLr}, maxLr ${maxLr}`);
  if (!Number.isSafeInteger(warmupSteps) || warmupSteps < 0) throw new RangeError(`warmup steps must be a non-negative integer, got ${warmupSteps}`);
  if (!Number.isSafeInteger(totalSteps) || totalSteps < warmupSteps) throw new RangeError(`total steps must be an integer ≥ warmup steps (${warmupSteps}), got ${totalSteps}`);
  return (step: number): number => {
    if (!Number.isFinite(step) || step < 0) throw new RangeError(`step must be ≥ 0, got ${step}`);
    if (step < warmupSteps) return (maxLr * (step + 1)) / warmupSteps;
    if (step >= totalSteps) return minLr;
    const progress = (step - warmupSteps) / (totalSteps - warmupSteps);
    return minLr + 0.5 * (maxLr - minLr) * (1 + Math.cos(Math.PI * progress));
  };
}

/** A constant learning rate (for tests and fine-tuning). */
export function constantLr(lr: number): LrSchedule {
  return () => lr;
}
