/**
 * Hugging Face export round trip, with no training: a randomly initialised TrainableLM → exportHuggingFace →
 * the inference loader (models/load.ts loadModel) → the same logits (within 1e-5: both float32 over identical
 * weights, differing only in summation order) and the same experts per token. Covers per-expert, fused and GPT-OSS
 * layouts, MLA, router biases and the DeepSeek-V3 correction bias (router state saved as a tensor), a switchyard_moe
 * model with MoE++ zero/copy/constant experts (research-router parameters), and bf16 export (compared with the
 * model's weights rounded to bf16).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TrainableLM } from '../../src/train/model/trainable-lm.js';
import { exportHuggingFace } from '../../src/train/model/export.js';
import { loadModel } from '../../src/models/load.js';
import { TrainableSigmoidGroupTopKRouter } from '../../src/moe/routers/sigmoid-group-topk.js';
import { noGrad } from '../../src/train/autograd/var.js';
import { bf16ToF32, f32ToBf16 } from '../../src/tensor/dtype.js';
import { UserError } from '../../src/util/errors.js';
import { maxAbsDiff } from '../helpers/fixtures.js';
import { rng } from './autograd/gradcheck.js';
import { TINY_CONFIGS } from './tiny-configs.js';

const ABS = 1e-5;
const STANDARD = new Set(['softmax-topk', 'topk-softmax', 'sigmoid-group-topk', 'group-limited-greedy']);
let root: string;
before(() => { root = mkdtempSync(join(tmpdir(), 'switchyard-export-')); });
after(() => { rmSync(root, { recursive: true, force: true }); });

function randomModel(arch: string, layout: 'per-expert' | 'fused'): TrainableLM {
  const lm = TrainableLM.fromConfig(TINY_CONFIGS[arch]!, { seed: 11, init: { scheme: 'fan-in' }, layout });
  const r = rng(3);
  for (const p of lm.params()) if (p.shape.length === 1) for (let i = 0; i < p.size; i++) p.data[i]! += 0.2 * (r() - 0.5);
  for (const router of lm.routers()) {
    if (router instanceof TrainableSigmoidGroupTopKRouter) {
      router.loadState({ [router.spec.biasName]: Array.from({ length: router.numExperts }, () => 0.2 * (r() - 0.5)) });
    }
  }
  return lm;
}

function assertSameModel(lm: TrainableLM, dir: string): number {
  const B = 2;
  const S = 7;
  const r = rng(17);
  const ids = Array.from({ length: B * S }, () => Math.floor(r() * lm.spec.vocabSize));
  const loaded = loadModel(dir);
  const want = noGrad(() => lm.forward(ids, B, S, { training: false }));
  const got = loaded.model.forward(ids, B, undefined, true);
  const { max, at } = maxAbsDiff(got.logits, want.logits.data);
  assert.ok(max <= ABS, `logits: max |diff| ${max} at ${at}`);
  // The inference block reports a Routing for the standard routers (research routers run without one).
  const routings = got.capture!.routing.filter((x) => x !== undefined);
  if (lm.routers().every((r) => STANDARD.has(r.name))) assert.equal(routings.length, want.routings.length);
  routings.forEach((x, i) => assert.deepEqual([...x.experts], [...want.routings[i]!.experts], `MoE layer ${i} experts`));
  return max;
}

describe('export → loadModel round trip', () => {
  const cases: [string, 'per-expert' | 'fused'][] = [
    ['qwen3_moe', 'per-expert'], ['mixtral', 'fused'], ['qwen2_moe', 'per-expert'], ['granitemoe', 'fused'],
    ['gpt_oss', 'per-expert'], ['deepseek_v2', 'per-expert'], ['deepseek_v3', 'per-expert'], ['deepseek_v3', 'fused'],
    ['switchyard_moe+moe++', 'per-expert'],
  ];
  for (const [arch, layout] of cases) {
    it(`${arch} (${layout}), f32`, (t) => {
      const lm = randomModel(arch, layout);
      const dir = join(root, `${arch.replace(/\W/g, '_')}-${layout}`);
      const res = exportHuggingFace(lm, TINY_CONFIGS[arch]!, dir);
      assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'model.safetensors'], 'only the two files, no temporaries');
      assert.equal(res.tensors, lm.params().length + Object.keys(lm.state()).length);
      t.diagnostic(`${arch}: max |logit diff| ${assertSameModel(lm, dir).toExponential(2)}`);
    });
  }

  it('bf16 weights load as the model rounded to bf16', () => {
    const lm = randomModel('qwen3_moe', 'per-expert');
    const dir = join(root, 'bf16');
    exportHuggingFace(lm, TINY_CONFIGS['qwen3_moe']!, dir, { dtype: 'bf16' });
    for (const p of lm.params()) for (let i = 0; i < p.size; i++) p.data[i] = bf16ToF32(f32ToBf16(p.data[i]!));
    assertSameModel(lm, dir);
  });

  it('refuses a config that describes another model', () => {
    const lm = randomModel('qwen3_moe', 'per-expert');
    const cfg = { ...TINY_CONFIGS['qwen3_moe']!, num_experts_per_tok: 3 };
    assert.throws(() => exportHuggingFace(lm, cfg, join(root, 'bad')), (e: unknown) => e instanceof UserError && /different model/.test(e.message));
    assert.throws(() => exportHuggingFace(lm, { ...cfg, model_type: 'nope' }, join(root, 'bad2')), UserError);
  });
});
