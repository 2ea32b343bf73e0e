/**
 * AdamW against a float64 reference written from Loshchilov & Hutter (2019), Algorithm 2; the warmup + cosine
 * schedule at its key points; global-norm clipping; gradient accumulation.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { param, constant, type Var } from '../../src/train/autograd/var.js';
import { AdamW, excludeFromDecay, defaultDecay } from '../../src/train/optim/adamw.js';
import { cosineWithWarmup, constantLr } from '../../src/train/optim/schedule.js';
import { clipGradNorm, globalGradNorm, scaleGrads, zeroGrads, gradsFinite, GradAccumulator } from '../../src/train/optim/clip.js';

/** Deterministic pseudo-random values in [-1, 1). */
function values(n: number, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

/**
 * Algorithm 2 of the paper ("Adam with decoupled weight decay"), float64, for one parameter vector:
 *   g_t = ∇f_t(θ_{t−1});  m_t = β1 m_{t−1} + (1−β1) g_t;  v_t = β2 v_{t−1} + (1−β2) g_t²
 *   m̂_t = m_t/(1−β1^t);  v̂_t = v_t/(1−β2^t)
 *   θ_t = θ_{t−1} − η_t ( α m̂_t/(√v̂_t + ε) + λ θ_{t−1} )
 */
class PaperAdamW {
  m: number[];
  v: number[];
  t = 0;
  constructor(public theta: number[], readonly alpha: number, readonly beta1: number, readonly beta2: number, readonly eps: number, readonly lambda: number) {
    this.m = theta.map(() => 0);
    this.v = theta.map(() => 0);
  }
  step(g: readonly number[], eta: number): void {
    this.t++;
    const { alpha, beta1, beta2, eps, lambda, t } = this;
    this.theta = this.theta.map((th, i) => {
      this.m[i] = beta1 * this.m[i]! + (1 - beta1) * g[i]!;
      this.v[i] = beta2 * this.v[i]! + (1 - beta2) * g[i]! * g[i]!;
      const mh = this.m[i]! / (1 - beta1 ** t);
      const vh = this.v[i]! / (1 - beta2 ** t);
      return th - eta * ((alpha * mh) / (Math.sqrt(vh) + eps) + lambda * th);
    });
  }
}

/** Normwise relative error: max |a − b| / max |b| (a moment that crosses zero has no meaningful per-element one). */
function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}

function setGrad(p: Var, g: readonly number[]): void {
  const buf = p.g();
  for (let i = 0; i < g.length; i++) buf[i] = g[i]!;
}

describe('AdamW vs the paper (float64 reference)', () => {
  // Paper hyper-parameters: α (base step), λ (decoupled decay), η_t (schedule multiplier).
  const alpha = 1e-2;
  const lambda = 1e-3; // per-step shrink is η_t·λ
  const etas = [0.3, 0.6, 1, 0.9, 0.5, 0.2];

  for (const precision of ['float64', 'float32'] as const) {
    it(`${precision} parameters follow Algorithm 2 for ${etas.length} steps (matrix with decay, vector without)`, () => {
      const Arr = precision === 'float64' ? Float64Array : Float32Array;
      const w0 = values(12, 1);
      const b0 = values(4, 2);
      const w = param(Arr.from(w0), [3, 4], 'layer.weight');
      const b = param(Arr.from(b0), [4], 'layer.bias');
      // Our lr is the paper's α·η_t, our weight decay λ/α (so lr·wd = η_t·λ).
      const opt = new AdamW([w, b], { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: lambda / alpha });
      const refW = new PaperAdamW(Array.from(w.data), alpha, 0.9, 0.95, 1e-8, lambda);
      const refB = new PaperAdamW(Array.from(b.data), alpha, 0.9, 0.95, 1e-8, 0);
      // The reference gets the gradients the optimizer sees (rounded to float32 for float32 parameters).
      const round = precision === 'float64' ? (x: number) => x : Math.fround;
      etas.forEach((eta, t) => {
        const gw = values(12, 100 + t).map((x) => round(x * (t + 1)));
        const gb = values(4, 200 + t).map(round);
        setGrad(w, gw);
        setGrad(b, gb);
        opt.step(alpha * eta);
        opt.zeroGrad();
        refW.step(gw, eta);
        refB.step(gb, eta);
      });
      // float32 storage rounds θ, m and v at every step (relative 6e-8 each).
      const tol = precision === 'float64' ? 1e-13 : 1e-6;
      const errs = {
        weight: maxRel(w.data, refW.theta),
        bias: maxRel(b.data, refB.theta),
        m: maxRel(opt.state().params['layer.weight']!.m, refW.m),
        v: maxRel(opt.state().params['layer.weight']!.v, refW.v),
      };
      for (const [k, e] of Object.entries(errs)) assert.ok(e < tol, `${k}: relative error ${e}`);
      const st = opt.state();
      assert.ok(st.params['layer.weight']!.m instanceof Arr);
      assert.equal(st.params['layer.weight']!.step, etas.length);
      assert.equal(st.stepCount, etas.length);
    });
  }

  it('the first step moves each coordinate by about lr (sign of the gradient), Adam\'s signature', () => {
    const p = param(new Float64Array([0, 0, 0]), [3], 'p');
    const opt = new AdamW([p], { lr: 0.1, weightDecay: 0 });
    setGrad(p, [5, -0.001, 0]);
    opt.step();
    assert.ok(Math.abs(p.data[0]! + 0.1) < 1e-9);
    assert.ok(Math.abs(p.data[1]! - 0.1) < 1e-5);
    assert.equal(p.data[2], 0);
  });
});

describe('AdamW options', () => {
  it('weight decay alone shrinks decayed parameters by lr·wd per step and leaves the others', () => {
    const w = param(new Float64Array([1, -2, 3, 4]), [2, 2], 'w');
    const n = param(new Float64Array([1, 1]), [2], 'norm.weight');
    const opt = new AdamW([w, n], { lr: 0.1, weightDecay: 0.5 });
    setGrad(w, [0, 0, 0, 0]);
    setGrad(n, [0, 0]);
    opt.step();
    assert.deepEqual([...w.data], [1, -2, 3, 4].map((x) => x - 0.1 * 0.5 * x));
    assert.deepEqual([...n.data], [1, 1]);
    assert.deepEqual(opt.decayedNames(), ['w']);
  });

  it('excludeFromDecay leaves named matrices (e.g. embeddings) alone', () => {
    const ps = [param(new Float32Array(4), [2, 2], 'model.embed_tokens.weight'), param(new Float32Array(4), [2, 2], 'layers.0.q_proj.weight'), param(new Float32Array(2), [2], 'layers.0.bias')];
    const opt = new AdamW(ps, { decay: excludeFromDecay('embed_tokens', /lm_head/) });
    assert.deepEqual(opt.decayedNames(), ['layers.0.q_proj.weight']);
    assert.equal(defaultDecay(ps[0]!), true);
  });

  it('frozen parameters (requiresGrad false, or trainable() false) and parameters without a gradient do not move', () => {
    const frozenConst = constant(new Float32Array([1, 2]), [2], 'c');
    const frozenPred = param(new Float32Array([3, 4]), [2], 'router.weight');
    const noGrad = param(new Float32Array([5, 6]), [2], 'unused');
    const live = param(new Float32Array([7, 8]), [2], 'live');
    const opt = new AdamW([frozenConst, frozenPred, noGrad, live], { lr: 0.1, trainable: (p) => !p.name.startsWith('router') });
    frozenConst.grad = new Float32Array([1, 1]);
    setGrad(frozenPred, [1, 1]);
    setGrad(live, [1, 1]);
    opt.step();
    assert.deepEqual([...frozenConst.data], [1, 2]);
    assert.deepEqual([...frozenPred.data], [3, 4]);
    assert.deepEqual([...noGrad.data], [5, 6]);
    assert.notDeepEqual([...live.data], [7, 8]);
    assert.deepEqual(Object.keys(opt.state().params), ['live']);
    assert.deepEqual(opt.trainableNames(), ['unused', 'live']);
    // A parameter that first gets a gradient later starts its own bias correction at t = 1.
    setGrad(noGrad, [1, 1]);
    opt.step();
    assert.equal(opt.state().params['unused']!.step, 1);
    assert.equal(opt.state().params['live']!.step, 2);
  });

  it('state() / loadState() round trip continues identically, and bad states are refused without side effects', () => {
    const mk = () => param(Float32Array.from(values(6, 9)), [2, 3], 'w');
    const a = mk();
    const optA = new AdamW([a], { lr: 0.05 });
    for (let t = 0; t < 3; t++) {
      setGrad(a, values(6, 50 + t));
      optA.step();
      optA.zeroGrad();
    }
    const b = param(a.data.slice(), [2, 3], 'w');
    const optB = new AdamW([b], { lr: 999 });
    optB.loadState(optA.state());
    assert.equal(optB.hyper.lr, 0.05);
    for (let t = 3; t < 6; t++) {
      setGrad(a, values(6, 50 + t));
      setGrad(b, values(6, 50 + t));
      optA.step();
      optB.step();
    }
    assert.deepEqual(b.data, a.data);
    const bad = optA.state();
    const f64State = { ...bad, params: { w: { step: 1, m: new Float64Array(6), v: new Float64Array(6) } } };
    assert.throws(() => optB.loadState(f64State), /float64/);
    assert.throws(() => optB.loadState({ ...bad, params: { other: bad.params['w']! } }), /not a parameter/);
    assert.deepEqual(optB.state().params['w']!.m, optA.state().params['w']!.m);
  });

  it('rejects unnamed or duplicate parameters and bad hyper-parameters', () => {
    assert.throws(() => new AdamW([param(new Float32Array(1), [1])]), /name/);
    assert.throws(() => new AdamW([param(new Float32Array(1), [1], 'a'), param(new Float32Array(1), [1], 'a')]), /two parameters/);
    assert.throws(() => new AdamW([], { beta1: 1 }), RangeError);
    assert.throws(() => new AdamW([]).step(NaN), RangeError);
  });
});

describe('cosineWithWarmup', () => {
  const lr = cosineWithWarmup({ maxLr: 1e-3, minLr: 1e-4, warmupSteps: 10, totalSteps: 110 });
  const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-15, `${a} vs ${b}`);
  it('warms up linearly from maxLr/warmup to maxLr', () => {
    close(lr(0), 1e-4);
    close(lr(4), 5e-4);
    close(lr(9), 1e-3);
  });
  it('decays by a half cosine to the floor, then stays there', () => {
    close(lr(10), 1e-3);
    close(lr(60), 5.5e-4); // middle: (max + min) / 2
    close(lr(35), 1e-4 + 0.5 * 9e-4 * (1 + Math.cos(Math.PI / 4)));
    close(lr(110), 1e-4);
    close(lr(1000), 1e-4);
    for (let s = 10; s < 110; s++) assert.ok(lr(s + 1) <= lr(s));
  });
  it('works without warmup and without a floor; validates its options', () => {
    const f = cosineWithWarmup({ maxLr: 2, warmupSteps: 0, totalSteps: 4 });
    assert.deepEqual([0, 1, 2, 3, 4].map(f).map((x) => Math.round(x * 1e12) / 1e12), [2, 1 + Math.SQRT1_2, 1, 1 - Math.SQRT1_2, 0].map((x) => Math.round(x * 1e12) / 1e12));
    assert.throws(() => cosineWithWarmup({ maxLr: 1, minLr: 2, warmupSteps: 0, totalSteps: 1 }), RangeError);
    assert.throws(() => cosineWithWarmup({ maxLr: 1, warmupSteps: 5, totalSteps: 4 }), RangeError);
    assert.equal(constantLr(0.3)(99), 0.3);
  });
});

describe('gradient clipping and accumulation', () => {
  const mk = (g: number[] | null, name: string): Var => {
    const p = param(new Float32Array(g ? g.length : 2), [g ? g.length : 2], name);
    if (g) p.grad = Float32Array.from(g);
    return p;
  };

  it('returns the pre-clip global norm and scales all gradients to maxNorm', () => {
    const ps = [mk([3, 0], 'a'), mk([0, 4], 'b'), mk(null, 'c')];
    assert.equal(globalGradNorm(ps), 5);
    assert.equal(clipGradNorm(ps, 1), 5);
    assert.ok(Math.abs(globalGradNorm(ps) - 1) < 1e-6);
    assert.ok(Math.abs(ps[0]!.grad![0]! - 0.6) < 1e-6 && Math.abs(ps[1]!.grad![1]! - 0.8) < 1e-6);
  });

  it('leaves gradients under the limit, and non-finite gradients, untouched', () => {
    const ps = [mk([0.3, 0.4], 'a')];
    assert.ok(Math.abs(clipGradNorm(ps, 1) - 0.5) < 1e-7);
    assert.deepEqual([...ps[0]!.grad!], [0.3, 0.4].map(Math.fround));
    const bad = [mk([NaN, 1], 'a'), mk([100, 0], 'b')];
    assert.ok(Number.isNaN(clipGradNorm(bad, 1)));
    assert.equal(bad[1]!.grad![0], 100);
    assert.equal(gradsFinite(bad), false);
    assert.equal(gradsFinite(ps), true);
    assert.throws(() => clipGradNorm(ps, 0), RangeError);
  });

  it('accumulating N micro-batches and scaling by 1/N gives the mean gradient', () => {
    const p = param(new Float64Array(3), [3], 'p');
    const micro = [[1, 2, 3], [3, 2, 1], [2, 2, 8], [2, 6, 0]];
    const acc = new GradAccumulator([p], 4);
    micro.forEach((g, i) => {
      const buf = p.g();
      g.forEach((x, j) => { buf[j] = buf[j]! + x; }); // what backward() does: +=
      assert.equal(acc.micro(), i === 3);
    });
    assert.deepEqual([...p.grad!], [2, 3, 3]);
    assert.throws(() => acc.micro(), /reset/);
    acc.reset();
    assert.equal(p.grad, null);
    assert.equal(acc.pending, 0);
    const q = mk([2, 4], 'q');
    scaleGrads([q], 0.5);
    assert.deepEqual([...q.grad!], [1, 2]);
    zeroGrads([q]);
    assert.equal(q.grad, null);
  });
});
