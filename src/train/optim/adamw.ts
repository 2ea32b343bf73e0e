/**
 * AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019) with bias correction.
 *
 * Per parameter θ with gradient g, at its t-th update (t counted per parameter, from 1):
 *
 *   m ← β1·m + (1−β1)·g          v ← β2·v + (1−β2)·g²
 *   m̂ = m / (1−β1^t)             v̂ = v / (1−β2^t)
 *   θ ← θ − lr·( m̂ / (√v̂ + ε) + λ·θ )          (λ·θ only for parameters that decay)
 *
 * `lr` is the learning rate of this step (the schedule's value). This is PyTorch's `torch.optim.AdamW` convention:
 * the paper writes θ ← θ − η_t·(α·m̂/(√v̂+ε) + λ_paper·θ); with lr = α·η_t the two agree when λ = λ_paper / α.
 *
 * The arithmetic is done in float64 and rounded once into the parameter's own precision: m and v are arrays of the
 * parameter's type (Float32Array for float32 parameters, Float64Array for float64 ones).
 *
 * Which parameters move: those with `requiresGrad` and, when given, `trainable(p)` true (freezing), and only when
 * they have a gradient this step (`grad === null` → untouched, like PyTorch). Which decay: `decay(p)`, by default
 * every parameter with two or more dimensions (matrices, embeddings) and none of the vectors (norm gains, biases);
 * `excludeFromDecay` builds a name-based predicate.
 */
import { type FArray, type Var, alloc } from '../autograd/var.js';

export interface AdamWOptions {
  /** Default learning rate, used when `step()` is called without one. */
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay λ (multiplied by the step's lr). Default 0.01, PyTorch's default. */
  weightDecay?: number;
  /** Whether a parameter gets weight decay. Default: `p.shape.length >= 2`. */
  decay?: (p: Var) => boolean;
  /** Whether a parameter is updated at all (beyond `requiresGrad`). Default: all. */
  trainable?: (p: Var) => boolean;
}

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** Optimizer state, keyed by parameter name. Arrays are the live buffers (copy before mutating). */
export interface AdamWState {
  hyper: AdamWHyper;
  /** Number of `step()` calls so far. */
  stepCount: number;
  params: Record<string, { step: number; m: FArray; v: FArray }>;
}

/** Decay every parameter except the vectors and those whose name matches one of `patterns`. */
export function excludeFromDecay(...patterns: (string | RegExp)[]): (p: Var) => boolean {
  return (p) => p.shape.length >= 2 && !patterns.some((pat) => (typeof pat === 'string' ? p.name.includes(pat) : pat.test(p.name)));
}

export function defaultDecay(p: Var): boolean {
  return p.shape.length >= 2;
}

interface Slot {
  readonly p: Var;
  readonly decays: boolean;
  readonly trainable: boolean;
  step: number;
  m: FArray | null;
  v: FArray | null;
}

export class AdamW {
  readonly params: readonly Var[];
  hyper: AdamWHyper;
  stepCount = 0;
  private readonly slots: Slot[];

  constructor(params: readonly Var[], opts: AdamWOptions = {}) {
    this.hyper = {
      lr: opts.lr ?? 1e-3,
      beta1: opts.beta1 ?? 0.9,
      beta2: opts.beta2 ?? 0.999,
      eps: opts.eps ?? 1e-8,
      weightDecay: opts.weightDecay ?? 0.01,
    };
    const { beta1, beta2, eps, weightDecay } = this.hyper;
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) throw new RangeError(`AdamW betas must be in [0, 1), got ${beta1}, ${beta2}`);
    if (!(eps >= 0) || !(weightDecay >= 0)) throw new RangeError(`AdamW eps and weight decay must be ≥ 0, got ${eps}, ${weightDecay}`);
    const names = new Set<string>();
    for (const p of params) {
      if (!p.name) throw new Error('AdamW: every parameter needs a name (for checkpoints)');
      if (names.has(p.name)) throw new Error(`AdamW: two parameters are named ${p.name}`);
      names.add(p.name);
    }
    const decay = opts.decay ?? defaultDecay;
    const trainable = opts.trainable ?? (() => true);
    this.params = [...params];
    this.slots = this.params.map((p) => ({ p, decays: decay(p), trainable: p.requiresGrad && trainable(p), step: 0, m: null, v: null }));
  }

  /** Names of the parameters that get weight decay (for logs). */
  decayedNames(): string[] {
    return this.slots.filter((s) => s.decays && s.trainable).map((s) => s.p.name);
  }

  /** Names of the parameters that are updated at all. */
  trainableNames(): string[] {
    return this.slots.filter((s) => s.trainable).map((s) => s.p.name);
  }

  /** One update of every trainable parameter that has a gradient, with learning rate `lr` (default: `hyper.lr`). */
  step(lr = this.hyper.lr): void {
    if (!Number.isFinite(lr) || lr < 0) throw new RangeError(`learning rate must be finite and ≥ 0, got ${lr}`);
    const { beta1, beta2, eps, weightDecay } = this.hyper;
    this.stepCount++;
    for (const s of this.slots) {
      const g = s.p.grad;
      if (!s.trainable || !g) continue;
      const x = s.p.data;
      if (g.length !== x.length) throw new Error(`AdamW: ${s.p.name} has ${x.length} values but a gradient of ${g.length}`);
      s.m ??= alloc(x, x.length);
      s.v ??= alloc(x, x.length);
      const m = s.m;
      const v = s.v;
      s.step++;
      const bc1 = 1 - beta1 ** s.step;
      const bc2 = 1 - beta2 ** s.step;
      const wd = s.decays ? weightDecay : 0;
      for (let i = 0; i < x.length; i++) {
        const gi = g[i]!;
        const mi = beta1 * m[i]! + (1 - beta1) * gi;
        const vi = beta2 * v[i]! + (1 - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        // The update reads the moments as stored (rounded to the parameter's precision), as a float32
        // implementation would.
        const mh = m[i]! / bc1;
        const vh = v[i]! / bc2;
        const xi = x[i]!;
        x[i] = xi - lr * (mh / (Math.sqrt(vh) + eps) + wd * xi);
      }
    }
  }

  /** Drop every parameter's gradient (they accumulate across backward passes otherwise). */
  zeroGrad(): void {
    for (const p of this.params) p.zeroGrad();
  }

  /** The live state (buffers are shared, not copied; parameters never stepped have no entry). */
  state(): AdamWState {
    const params: AdamWState['params'] = {};
    for (const s of this.slots) {
      if (s.m && s.v) params[s.p.name] = { step: s.step, m: s.m, v: s.v };
    }
    return { hyper: { ...this.hyper }, stepCount: this.stepCount, params };
  }

  /**
   * Restore a state (copies the arrays), hyper-parameters included. Each entry must name a parameter of this
   * optimizer and match its size and precision; parameters without an entry start fresh.
   */
  loadState(state: AdamWState): void {
    const byName = new Map(this.slots.map((s) => [s.p.name, s]));
    for (const name of Object.keys(state.params)) {
      if (!byName.has(name)) throw new Error(`optimizer state has an entry for ${name}, which is not a parameter of this optimizer`);
    }
    // Validate everything before changing anything.
    for (const s of this.slots) {
      const e = state.params[s.p.name];
      if (!e) continue;
      const f64 = s.p.data instanceof Float64Array;
      for (const [k, a] of [['m', e.m], ['v', e.v]] as const) {
        if (a.length !== s.p.data.length) throw new Error(`optimizer state ${k} of ${s.p.name} has ${a.length} values, the parameter ${s.p.data.length}`);
        if ((a instanceof Float64Array) !== f64) throw new Error(`optimizer state ${k} of ${s.p.name} is ${a instanceof Float64Array ? 'float64' : 'float32'}, the parameter ${f64 ? 'float64' : 'float32'}`);
      }
      if (!Number.isSafeInteger(e.step) || e.step < 0) throw new Error(`optimizer state of ${s.p.name} has an invalid step ${e.step}`);
    }
    for (const s of this.slots) {
      const e = state.params[s.p.name];
      s.step = e ? e.step : 0;
      s.m = e ? e.m.slice() : null;
      s.v = e ? e.v.slice() : null;
    }
    this.hyper = { ...state.hyper };
    this.stepCount = state.stepCount;
  }
}
