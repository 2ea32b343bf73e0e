/**
 * Training checkpoints: N steps == N/2 steps + save + load + N/2 steps, bit for bit (parameters, optimizer moments,
 * data sampler); exact restoration of float32/float64 bits; detection of incomplete or mixed checkpoints.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { param, type Var, type FArray } from '../../src/train/autograd/var.js';
import { AdamW } from '../../src/train/optim/adamw.js';
import { cosineWithWarmup } from '../../src/train/optim/schedule.js';
import { clipGradNorm } from '../../src/train/optim/clip.js';
import { BatchSampler, type SamplerState } from '../../src/data/token-dataset.js';
import { saveCheckpoint, loadCheckpoint, readCheckpoint, isCompleteCheckpoint, MODEL_FILE, OPTIMIZER_FILE, TRAINER_STATE_FILE, type TrainerStateJson } from '../../src/train/checkpoint.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { FileSource } from '../../src/io/file-source.js';

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'switchyard-ckpt-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

const bytesOf = (a: FArray): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Data for the toy problem: 500 pseudo-random "tokens" in 0..99. */
const DATA = (() => {
  let s = 12345;
  return Int32Array.from({ length: 500 }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 16) % 100;
  });
})();

function makeParams(init: 'random' | 'zeros'): Var[] {
  const r = (n: number, k: number) => Array.from({ length: n }, (_, i) => (init === 'zeros' ? 0 : Math.sin(i * 1.7 + k)));
  return [
    param(Float32Array.from(r(12, 1)), [4, 3], 'layers.0.mlp.weight'),
    param(Float32Array.from(r(3, 2)), [3], 'layers.0.norm.weight'),
    param(Float64Array.from(r(2, 3)), [2], 'scale64'),
  ];
}

/**
 * A quadratic whose minimum moves with the data: f = ½ Σ a_i (θ_i − c_i)², c_i taken from the sampled batch, so the
 * trajectory depends on the parameters, the optimizer moments, the schedule and the sampler position.
 */
function trainSteps(params: Var[], opt: AdamW, sampler: BatchSampler, from: number, to: number): void {
  const schedule = cosineWithWarmup({ maxLr: 0.05, minLr: 0.005, warmupSteps: 3, totalSteps: 20 });
  for (let step = from; step < to; step++) {
    const batch = sampler.next();
    let k = 0;
    for (const p of params) {
      const g = p.g();
      for (let i = 0; i < p.size; i++, k++) {
        const c = batch.targets[k % batch.targets.length]! / 50 - 1;
        const a = 1 + (k % 3);
        g[i] = a * (p.data[i]! - c);
      }
    }
    clipGradNorm(params, 2);
    opt.step(schedule(step));
    opt.zeroGrad();
  }
}

function newRun(init: 'random' | 'zeros'): { params: Var[]; opt: AdamW; sampler: BatchSampler } {
  const params = makeParams(init);
  return { params, opt: new AdamW(params, { lr: 0.05, beta2: 0.95, weightDecay: 0.1 }), sampler: new BatchSampler(DATA, { batchSize: 2, seqLen: 4, seed: 7 }) };
}

describe('resume', () => {
  it('N steps == N/2 steps + save + load into fresh objects + N/2 steps, bit for bit', () => {
    const N = 20;
    const ref = newRun('random');
    trainSteps(ref.params, ref.opt, ref.sampler, 0, N);

    const first = newRun('random');
    trainSteps(first.params, first.opt, first.sampler, 0, N / 2);
    const dir = join(root, 'resume', `step-${N / 2}`);
    saveCheckpoint(dir, { params: first.params, optimizer: first.opt.state(), step: N / 2, sampler: first.sampler.state(), extra: { config: { d: 4 }, losses: [1.5, 1.25] } });

    // Fresh everything, deliberately different: zero parameters, other lr, a sampler at another position.
    const params = makeParams('zeros');
    const opt = new AdamW(params, { lr: 123 });
    const restored = loadCheckpoint(dir, { params, optimizer: opt });
    assert.equal(restored.step, N / 2);
    assert.deepEqual(restored.extra, { config: { d: 4 }, losses: [1.5, 1.25] });
    const sampler = BatchSampler.fromState(DATA, restored.sampler as SamplerState);
    assert.equal(sampler.step, N / 2);
    trainSteps(params, opt, sampler, restored.step, N);

    params.forEach((p, i) => {
      assert.equal(p.data.constructor, ref.params[i]!.data.constructor, p.name);
      assert.ok(bytesOf(p.data).equals(bytesOf(ref.params[i]!.data)), `${p.name} differs`);
    });
    const a = opt.state();
    const b = ref.opt.state();
    assert.deepEqual(a.hyper, b.hyper);
    assert.equal(a.stepCount, b.stepCount);
    for (const name of Object.keys(b.params)) {
      assert.equal(a.params[name]!.step, b.params[name]!.step);
      assert.ok(bytesOf(a.params[name]!.m).equals(bytesOf(b.params[name]!.m)), `m of ${name}`);
      assert.ok(bytesOf(a.params[name]!.v).equals(bytesOf(b.params[name]!.v)), `v of ${name}`);
    }
    assert.deepEqual(sampler.state(), ref.sampler.state());
    // and the trajectory did move
    assert.ok(!bytesOf(params[0]!.data).equals(bytesOf(makeParams('random')[0]!.data)));
  });
});

describe('files', () => {
  it('writes the three files (no temporaries left) with the documented contents', () => {
    const run = newRun('random');
    trainSteps(run.params, run.opt, run.sampler, 0, 2);
    const dir = join(root, 'files');
    saveCheckpoint(dir, { params: run.params, optimizer: run.opt.state(), step: 2, sampler: run.sampler.state() });
    saveCheckpoint(dir, { params: run.params, optimizer: run.opt.state(), step: 2, sampler: run.sampler.state() }); // overwrite
    assert.deepEqual(readdirSync(dir).sort(), [MODEL_FILE, OPTIMIZER_FILE, TRAINER_STATE_FILE].sort());
    const model = new SafetensorsFile(new FileSource(join(dir, MODEL_FILE)));
    assert.deepEqual([...model.tensors.values()].map((t) => [t.name, t.dtype, t.shape]), [
      ['layers.0.mlp.weight', 'F32', [4, 3]],
      ['layers.0.norm.weight', 'F32', [3]],
      ['scale64', 'F64', [2]],
    ]);
    assert.equal(model.metadata['format'], 'pt');
    model.close();
    const opt = new SafetensorsFile(new FileSource(join(dir, OPTIMIZER_FILE)));
    assert.deepEqual([...opt.tensors.keys()].sort(), ['exp_avg.layers.0.mlp.weight', 'exp_avg.layers.0.norm.weight', 'exp_avg.scale64', 'exp_avg_sq.layers.0.mlp.weight', 'exp_avg_sq.layers.0.norm.weight', 'exp_avg_sq.scale64']);
    assert.equal(opt.info('exp_avg.scale64').dtype, 'F64');
    opt.close();
    const state = JSON.parse(readFileSync(join(dir, TRAINER_STATE_FILE), 'utf8')) as TrainerStateJson;
    assert.equal(state.step, 2);
    assert.deepEqual(state.optimizer!.steps, { 'layers.0.mlp.weight': 2, 'layers.0.norm.weight': 2, 'scale64': 2 });
    assert.match(state.files[MODEL_FILE]!.sha256, /^[0-9a-f]{64}$/);
    assert.equal(isCompleteCheckpoint(dir), true);
  });

  it('restores special float bits exactly (NaN payloads, -0, subnormals, infinities)', () => {
    const f32 = new Float32Array(6);
    const u32 = new Uint32Array(f32.buffer);
    u32.set([0x7fc12345, 0x80000000, 0x00000001, 0x7f800000, 0xff800000, 0x3f800001]);
    const f64 = new Float64Array([-0, Number.MIN_VALUE, 1 / 3]);
    new BigUint64Array(f64.buffer)[0] = 0x7ff8dead_beef0001n; // a NaN with a payload
    const dir = join(root, 'bits');
    saveCheckpoint(dir, { params: [param(f32.slice(), [2, 3], 'a'), param(f64.slice(), [3], 'b')], step: 0 });
    const back = readCheckpoint(dir);
    assert.ok(bytesOf(back.params.get('a')!.data).equals(bytesOf(f32)));
    assert.ok(bytesOf(back.params.get('b')!.data).equals(bytesOf(f64)));
    assert.ok(back.params.get('a')!.data instanceof Float32Array);
    assert.ok(back.params.get('b')!.data instanceof Float64Array);
    assert.equal(back.optimizer, null);
    const target = [param(new Float32Array(6), [2, 3], 'a'), param(new Float64Array(3), [3], 'b')];
    const r = loadCheckpoint(dir, { params: target });
    assert.equal(r.sampler, null);
    assert.ok(bytesOf(target[0]!.data).equals(bytesOf(f32)));
    assert.ok(bytesOf(target[1]!.data).equals(bytesOf(f64)));
  });
});

describe('refusals', () => {
  const save = (dir: string, value: number): void => {
    const p = param(new Float32Array([value, value]), [2], 'w');
    const opt = new AdamW([p]);
    p.grad = new Float32Array([1, 1]);
    opt.step();
    saveCheckpoint(dir, { params: [p], optimizer: opt.state(), step: value });
  };

  it('a folder mixing files of two saves (a crash between renames) is refused', () => {
    const a = join(root, 'mix-a');
    const b = join(root, 'mix-b');
    save(a, 1);
    save(b, 2);
    copyFileSync(join(b, OPTIMIZER_FILE), join(a, OPTIMIZER_FILE));
    copyFileSync(join(b, MODEL_FILE), join(a, MODEL_FILE));
    assert.throws(() => readCheckpoint(a), /inconsistent/);
    assert.equal(isCompleteCheckpoint(a), false);
    assert.equal(isCompleteCheckpoint(b), true);
  });

  it('a folder without trainer_state.json (a crash before the commit) or with a missing file is refused', () => {
    const a = join(root, 'partial');
    save(a, 1);
    rmSync(join(a, OPTIMIZER_FILE));
    assert.throws(() => readCheckpoint(a), /optimizer.safetensors is missing/);
    rmSync(join(a, TRAINER_STATE_FILE));
    assert.throws(() => readCheckpoint(a), /not a complete checkpoint/);
    assert.equal(isCompleteCheckpoint(a), false);
    writeFileSync(join(a, TRAINER_STATE_FILE), '{"format":"something-else"}');
    assert.throws(() => readCheckpoint(a), /not a Switchyard trainer state/);
  });

  it('mismatched parameters are refused before anything is changed', () => {
    const dir = join(root, 'mismatch');
    save(dir, 3);
    const wrongShape = param(new Float32Array(3), [3], 'w');
    assert.throws(() => loadCheckpoint(dir, { params: [wrongShape] }), /shape/);
    assert.deepEqual([...wrongShape.data], [0, 0, 0]);
    assert.throws(() => loadCheckpoint(dir, { params: [param(new Float64Array(2), [2], 'w')] }), /F32/);
    assert.throws(() => loadCheckpoint(dir, { params: [param(new Float32Array(2), [2], 'w'), param(new Float32Array(1), [1], 'extra')] }), /no tensor extra/);
    const w = param(new Float32Array(2), [2], 'w');
    const other = param(new Float32Array(2), [2], 'other');
    assert.throws(() => loadCheckpoint(dir, { params: [other] }), /no tensor other/);
    assert.throws(() => loadCheckpoint(dir, { params: [], optimizer: new AdamW([]) }), /does not: w/);
    const r = loadCheckpoint(dir, { params: [], allowUnused: true });
    assert.equal(r.step, 3);
    const opt = new AdamW([w]);
    loadCheckpoint(dir, { params: [w], optimizer: opt });
    assert.equal(opt.state().params['w']!.step, 1);
    const noOpt = join(root, 'no-opt');
    saveCheckpoint(noOpt, { params: [w], step: 0 });
    assert.throws(() => loadCheckpoint(noOpt, { params: [w], optimizer: new AdamW([w]) }), /no optimizer state/);
    assert.throws(() => saveCheckpoint(noOpt, { params: [w, param(new Float32Array(1), [1], 'w')], step: 0 }), /two parameters/);
    assert.throws(() => saveCheckpoint(noOpt, { params: [w], step: -1 }), RangeError);
  });
});
