/**
 * The training loop: seeded batches → TrainableLM loss (LM + routers' and load-balancing aux losses) → backward →
 * gradient accumulation → clipping → AdamW with warmup + cosine → routers' non-gradient updates (aux-loss-free
 * bias, ReMoE λ). Evaluates on held-out tokens, records curves and expert load, checkpoints atomically, and resumes
 * bit-for-bit (parameters, optimizer moments, sampler position, router state and history are all restored).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../io/checkpoint.js';
import type { SlotRouting } from '../moe/routers/trainable.js';
import { backward, noGrad, type Var } from './autograd/var.js';
import { TrainableLM } from './model/trainable-lm.js';
import { AdamW, excludeFromDecay } from './optim/adamw.js';
import { cosineWithWarmup } from './optim/schedule.js';
import { clipGradNorm, scaleGrads, gradsFinite } from './optim/clip.js';
import { saveCheckpoint, loadCheckpoint, isCompleteCheckpoint } from './checkpoint.js';
import { BatchSampler, validationBatches, type SamplerState } from '../data/token-dataset.js';
import { UserError } from '../util/errors.js';

export interface TrainHyper {
  steps: number;
  batchSize: number;
  seqLen: number;
  lr: number;
  minLr: number;
  warmup: number;
  weightDecay: number;
  clip: number;
  /** Micro-batches per optimizer step. */
  accum: number;
  seed: number;
  evalEvery: number;
  evalBatches: number;
  /** 0 = only at the end. */
  checkpointEvery: number;
  /** 'router': freeze everything but the routers' parameters. */
  trainOnly: 'all' | 'router';
}

export const DEFAULT_HYPER: TrainHyper = {
  steps: 200, batchSize: 8, seqLen: 128, lr: 3e-3, minLr: 3e-4, warmup: 20, weightDecay: 0.1, clip: 1, accum: 1, seed: 0,
  evalEvery: 50, evalBatches: 8, checkpointEvery: 0, trainOnly: 'all',
};

export interface StepMetrics {
  step: number;
  loss: number;
  lm: number;
  aux: number;
  lr: number;
  gradNorm: number;
  tokensPerSec: number;
  /** Mean over MoE layers of max / mean expert load (1 = perfectly balanced). */
  imbalance: number;
  /** Routed FFN experts per token, averaged over MoE layers. */
  activeExperts: number;
}

export interface EvalPoint {
  step: number;
  valLoss: number;
}

export interface TrainHistory {
  train: StepMetrics[];
  eval: EvalPoint[];
  /** Per MoE layer, fraction of routed slots per expert over the last `loadWindow` steps. */
  load: number[][];
}

export interface TrainerData {
  train: Int32Array;
  validation: Int32Array;
}

export interface TrainerOptions {
  /** Folder for `checkpoint/` (resume state). */
  checkpointDir?: string;
  resume?: boolean;
  onStep?: (m: StepMetrics) => void;
  onEval?: (e: EvalPoint) => void;
  /** Router-only fine-tuning etc. start from these parameter values. */
  initFrom?: TrainableLM;
}

const LOAD_WINDOW = 20;

/** Counts of routed FFN slots per expert, one row per MoE layer. */
function slotLoad(routings: readonly SlotRouting[], E: number): Float64Array[] {
  return routings.map((r) => {
    const c = new Float64Array(E);
    for (let i = 0; i < r.experts.length; i++) { const e = r.experts[i]!; if (e < E) c[e]!++; }
    return c;
  });
}

export class Trainer {
  readonly lm: TrainableLM;
  readonly optimizer: AdamW;
  readonly history: TrainHistory = { train: [], eval: [], load: [] };
  private sampler: BatchSampler;
  private step = 0;
  private readonly schedule: (s: number) => number;
  private readonly trainable: Var[];
  private loadSteps: Float64Array[][] = [];

  constructor(readonly config: Config, readonly hyper: TrainHyper, readonly data: TrainerData, readonly opts: TrainerOptions = {}) {
    this.lm = opts.initFrom ?? TrainableLM.fromConfig(config, { seed: hyper.seed });
    const routerParams = new Set(this.lm.routers().flatMap((r) => r.params()).map((p) => p.name));
    const isTrainable = (p: Var): boolean => hyper.trainOnly === 'all' || routerParams.has(p.name);
    this.trainable = this.lm.params().filter(isTrainable);
    if (this.trainable.length === 0) throw new UserError('nothing to train: the model has no router parameters');
    this.optimizer = new AdamW(this.lm.params(), {
      lr: hyper.lr, weightDecay: hyper.weightDecay,
      decay: excludeFromDecay('embed_tokens', 'norm', 'gate.weight', 'router'),
      trainable: isTrainable,
    });
    this.schedule = cosineWithWarmup({ maxLr: hyper.lr, minLr: Math.min(hyper.minLr, hyper.lr), warmupSteps: Math.min(hyper.warmup, hyper.steps), totalSteps: hyper.steps });
    this.sampler = new BatchSampler(data.train, { batchSize: hyper.batchSize, seqLen: hyper.seqLen, seed: hyper.seed });
    if (opts.resume) this.resume();
  }

  get currentStep(): number {
    return this.step;
  }

  private resume(): void {
    const dir = this.opts.checkpointDir;
    if (!dir || !isCompleteCheckpoint(dir)) throw new UserError(`--resume: no complete checkpoint in ${dir ?? '(no folder given)'}`);
    const r = loadCheckpoint(dir, { params: this.lm.params(), optimizer: this.optimizer });
    this.step = r.step;
    this.sampler = BatchSampler.fromState(this.data.train, r.sampler as SamplerState);
    const extra = r.extra as { history?: TrainHistory; routerState?: Record<string, number[]>; loadSteps?: number[][][] };
    if (extra.history) Object.assign(this.history, extra.history);
    if (extra.routerState) this.lm.loadState(extra.routerState);
    this.loadSteps = (extra.loadSteps ?? []).map((layers) => layers.map((l) => Float64Array.from(l)));
  }

  saveCheckpoint(): void {
    const dir = this.opts.checkpointDir;
    if (!dir) return;
    saveCheckpoint(dir, {
      params: this.lm.params(),
      optimizer: this.optimizer.state(),
      step: this.step,
      sampler: this.sampler.state(),
      extra: {
        config: this.config,
        hyper: this.hyper,
        history: this.history,
        routerState: this.lm.state(),
        loadSteps: this.loadSteps.map((layers) => layers.map((l) => Array.from(l))),
      },
    });
  }

  /** Mean next-token loss over the validation windows (routers in eval mode, no aux losses). */
  evaluate(): number {
    let total = 0;
    let n = 0;
    noGrad(() => {
      for (const b of validationBatches(this.data.validation, { batchSize: this.hyper.batchSize, seqLen: this.hyper.seqLen, maxBatches: this.hyper.evalBatches })) {
        const out = this.lm.loss(b.inputs, b.batchSize, b.seqLen, { training: false, auxCoef: 0, targets: b.targets });
        total += out.lm.data[0]! * b.batchSize;
        n += b.batchSize;
      }
    });
    if (n === 0) throw new UserError(`the validation split has fewer than ${this.hyper.seqLen + 1} tokens`);
    return total / n;
  }

  /** One optimizer step (accum micro-batches). */
  trainStep(): StepMetrics {
    const h = this.hyper;
    const t0 = performance.now();
    const E = this.config['num_experts'] as number;
    let loss = 0, lm = 0, aux = 0;
    const forwards: SlotRouting[][] = [];
    let tokens = 0;
    let activeSlots = 0;
    for (let m = 0; m < h.accum; m++) {
      const b = this.sampler.next();
      const out = this.lm.loss(b.inputs, b.batchSize, b.seqLen, { training: true, targets: b.targets });
      backward(out.loss);
      loss += out.loss.data[0]! / h.accum;
      lm += out.lm.data[0]! / h.accum;
      aux += (out.loss.data[0]! - out.lm.data[0]!) / h.accum;
      forwards.push(out.routings);
      for (const r of out.routings) for (let s = 0; s < r.experts.length; s++) if (r.experts[s]! < E) activeSlots++;
      tokens += b.batchSize * b.seqLen;
    }
    if (h.accum > 1) scaleGrads(this.trainable, 1 / h.accum);
    if (!gradsFinite(this.trainable)) throw new Error(`step ${this.step}: non-finite gradients (loss ${loss}); lower --lr`);
    const gradNorm = clipGradNorm(this.trainable, h.clip);
    const lr = this.schedule(this.step);
    this.optimizer.step(lr);
    this.optimizer.zeroGrad();
    this.lm.zeroGrad();
    this.lm.afterStep(forwards);
    // Load statistics: routed FFN slots per expert, per MoE layer, summed over the step's micro-batches.
    const loads = this.lm.moeLayers.map(() => new Float64Array(E));
    for (const f of forwards) slotLoad(f, E).forEach((c, i) => c.forEach((v, e) => (loads[i]![e]! += v)));
    this.loadSteps.push(loads);
    if (this.loadSteps.length > LOAD_WINDOW) this.loadSteps.shift();
    let imb = 0;
    for (const c of loads) {
      const mean = c.reduce((a, b) => a + b, 0) / E;
      imb += mean > 0 ? Math.max(...c) / mean : 0;
    }
    const nLayers = Math.max(1, loads.length);
    this.step++;
    const m: StepMetrics = {
      step: this.step, loss, lm, aux, lr, gradNorm,
      tokensPerSec: tokens / ((performance.now() - t0) / 1000),
      imbalance: imb / nLayers,
      activeExperts: activeSlots / tokens / nLayers,
    };
    this.history.train.push(m);
    return m;
  }

  /** Expert load fractions per layer over the recent window. */
  recentLoad(): number[][] {
    if (!this.loadSteps.length) return [];
    const L = this.loadSteps[0]!.length;
    return Array.from({ length: L }, (_, l) => {
      const E = this.loadSteps[0]![l]!.length;
      const c = new Float64Array(E);
      for (const s of this.loadSteps) s[l]!.forEach((v, e) => (c[e]! += v));
      const tot = c.reduce((a, b) => a + b, 0) || 1;
      return Array.from(c, (v) => v / tot);
    });
  }

  /**
   * Train to `hyper.steps` (from wherever a resume left off), evaluating and checkpointing on schedule. `until`
   * stops early (the schedule still spans `hyper.steps`), e.g. to checkpoint half-way and resume later.
   */
  run(until = this.hyper.steps): TrainHistory {
    const h = this.hyper;
    while (this.step < Math.min(until, h.steps)) {
      const m = this.trainStep();
      this.opts.onStep?.(m);
      if (m.step % h.evalEvery === 0 || m.step === h.steps) {
        const e = { step: m.step, valLoss: this.evaluate() };
        this.history.eval.push(e);
        this.opts.onEval?.(e);
      }
      this.history.load = this.recentLoad();
      if (h.checkpointEvery > 0 && m.step % h.checkpointEvery === 0 && m.step < h.steps) this.saveCheckpoint();
    }
    this.saveCheckpoint();
    return this.history;
  }
}

export function checkpointPath(out: string): string {
  return join(out, 'checkpoint');
}

export function hasCheckpoint(out: string): boolean {
  return existsSync(join(checkpointPath(out), 'trainer_state.json'));
}
