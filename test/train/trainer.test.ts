/**
 * The training loop on tiny models and synthetic data (a seeded first-order Markov chain, so there is something
 * to learn): the loss falls; auxiliary-loss-free balancing lowers load imbalance against no balancing with the same
 * seed; N steps == N/2 steps + checkpoint + resume + N/2 steps, bit for bit; router-only fine-tuning leaves every
 * other parameter untouched.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Trainer, DEFAULT_HYPER, type TrainHyper } from '../../src/train/trainer.js';
import { modelConfig, routerPreset, type ModelShape } from '../../src/train/presets.js';
import type { RouterSpec } from '../../src/moe/routers/router.js';
import { makeRng } from '../../src/infer/sampling.js';

const SHAPE: ModelShape = { layers: 2, hidden: 32, heads: 2, kvHeads: 1, headDim: 16, expertFfn: 32, experts: 4, topK: 2, sharedExperts: 0, maxPositions: 64, tieEmbeddings: true };
const V = 48;

/** Tokens from one sparse random Markov chain (each token has 3 possible successors); `seed` picks the walk. */
const chainRng = makeRng(1);
const NEXT = Array.from({ length: V }, () => [0, 1, 2].map(() => Math.floor(chainRng() * V)));
function markovTokens(n: number, seed: number): Int32Array {
  const rng = makeRng(seed);
  const next = NEXT;
  const out = new Int32Array(n);
  let t = 0;
  for (let i = 0; i < n; i++) { out[i] = t; t = next[t]![Math.floor(rng() * 3)]!; }
  return out;
}

const DATA = { train: markovTokens(20000, 1), validation: markovTokens(2000, 2) };
const hyper = (h: Partial<TrainHyper>): TrainHyper => ({ ...DEFAULT_HYPER, batchSize: 4, seqLen: 16, lr: 1e-2, minLr: 1e-3, warmup: 2, evalEvery: 1000, evalBatches: 4, ...h });
const config = (router: RouterSpec | 'standard') => modelConfig(SHAPE, router, V, 0);

describe('trainer', () => {
  let tmp: string;
  before(() => { tmp = mkdtempSync(join(tmpdir(), 'switchyard-trainer-')); });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('the validation loss falls well below its starting value (40 steps)', () => {
    const t = new Trainer(config('standard'), hyper({ steps: 40 }), DATA);
    const before = t.evaluate();
    t.run();
    const afterLoss = t.evaluate();
    // Uniform guessing costs ln 48 ≈ 3.87 nats; the chain's entropy is ≤ ln 3 ≈ 1.10.
    assert.ok(before > 3.5, `initial loss ${before}`);
    assert.ok(afterLoss < before - 1, `loss went from ${before} to ${afterLoss}`);
  });

  it('auxiliary-loss-free bias balancing lowers load imbalance against no balancing (same seed)', () => {
    const run = (router: RouterSpec): number => {
      const t = new Trainer(config(router), hyper({ steps: 60, seed: 3 }), DATA);
      const h = t.run();
      const last = h.train.slice(-20);
      return last.reduce((a, m) => a + m.imbalance, 0) / last.length;
    };
    const none = run({ kind: 'aux-free-sigmoid', normTopK: true, biasUpdateRate: 0 });
    const auxFree = run({ kind: 'aux-free-sigmoid', normTopK: true, biasUpdateRate: 0.02 });
    assert.ok(auxFree < none, `imbalance with aux-free balancing ${auxFree.toFixed(3)} vs none ${none.toFixed(3)}`);
  });

  it('resume is exact: 10 steps == 5 + checkpoint + resume + 5, bit for bit', () => {
    const cfg = config(routerPreset('aux-free', SHAPE) as RouterSpec);
    const h = hyper({ steps: 10, accum: 2, evalEvery: 5 });
    const straight = new Trainer(cfg, h, DATA);
    straight.run();
    const dir = join(tmp, 'ck');
    const first = new Trainer(cfg, h, DATA, { checkpointDir: dir });
    first.run(5);
    first.saveCheckpoint();
    const resumed = new Trainer(cfg, h, DATA, { checkpointDir: dir, resume: true });
    assert.equal(resumed.currentStep, 5);
    resumed.run();
    const a = straight.lm.namedParams();
    const b = resumed.lm.namedParams();
    assert.deepEqual([...a.keys()], [...b.keys()]);
    for (const [name, p] of a) assert.deepEqual(Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength), Buffer.from(b.get(name)!.data.buffer, b.get(name)!.data.byteOffset, b.get(name)!.data.byteLength), name);
    assert.deepEqual(straight.lm.state(), resumed.lm.state(), 'router state (aux-free biases)');
    assert.deepEqual(straight.history.eval, resumed.history.eval);
  });

  it('router-only fine-tuning changes the routers and nothing else', () => {
    const base = new Trainer(config('standard'), hyper({ steps: 5 }), DATA);
    base.run();
    const frozen = new Map([...base.lm.namedParams()].map(([n, p]) => [n, Float32Array.from(p.data)]));
    const routerNames = new Set(base.lm.routers().flatMap((r) => r.params()).map((p) => p.name));
    assert.ok(routerNames.size > 0);
    const ft = new Trainer(config('standard'), hyper({ steps: 5, trainOnly: 'router', seed: 9 }), DATA, { initFrom: base.lm });
    ft.run();
    for (const [name, p] of ft.lm.namedParams()) {
      const same = Buffer.compare(Buffer.from(Float32Array.from(p.data).buffer), Buffer.from(frozen.get(name)!.buffer)) === 0;
      assert.equal(same, !routerNames.has(name), `${name} ${routerNames.has(name) ? 'should change' : 'should stay frozen'}`);
    }
  });
});
