/**
 * `switchyard train` and `compare-routers` end to end on a tiny model and a small text: the output folder is a
 * Hugging Face folder the inference loader runs (standard router → qwen3_moe; research router → switchyard_moe),
 * router-only fine-tuning from it works, and bad settings fail with one line and exit 2.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../src/models/load.js';

const CLI = join(process.cwd(), 'dist/src/cli/main.js');
const run = (args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, SWITCHYARD_THREADS: '1' } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
};
const TINY = ['--layers', '2', '--hidden', '32', '--heads', '2', '--kv-heads', '1', '--head-dim', '16', '--expert-ffn', '16',
  '--experts', '4', '--top-k', '2', '--batch', '2', '--seq', '16', '--eval-every', '4', '--eval-batches', '2', '--vocab', '300'];

describe('switchyard train', () => {
  let tmp: string;
  let text: string;
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'switchyard-train-cli-'));
    text = join(tmp, 'story.txt');
    const para = 'Once upon a time there was a little fox who lived by the river. Every morning the fox went down to the water to drink. ';
    writeFileSync(text, Array.from({ length: 60 }, (_, i) => `${para}On day ${i} the fox saw ${i % 3 ? 'a heron' : 'a fish'}.\n\n`).join(''));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('writes a qwen3_moe folder for the standard router, which inspect and generate run', () => {
    const out = join(tmp, 'std');
    const r = run(['train', '--out', out, '--text', text, '--steps', '8', ...TINY]);
    assert.equal(r.code, 0, r.err);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'training_log.json', 'checkpoint/trainer_state.json']) {
      assert.ok(existsSync(join(out, f)), f);
    }
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { model_type: string };
    assert.equal(cfg.model_type, 'qwen3_moe');
    const log = JSON.parse(readFileSync(join(out, 'training_log.json'), 'utf8')) as { history: { eval: { valLoss: number }[] } };
    assert.equal(log.history.eval.length, 2);
    assert.equal(run(['inspect', out]).code, 0);
    const g = run(['generate', out, 'Once upon a time', '--max-new-tokens', '5']);
    assert.equal(g.code, 0, g.err);
    assert.match(g.out, /^Once upon a time/);
    assert.equal(loadModel(out).spec.modelType, 'qwen3_moe');
  });

  it('writes a switchyard_moe folder for a research router; router-only fine-tuning from it', () => {
    const out = join(tmp, 'moepp');
    const r = run(['train', '--out', out, '--text', text, '--steps', '4', '--router', 'moe++', ...TINY]);
    assert.equal(r.code, 0, r.err);
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { model_type: string; router: { kind: string } };
    assert.equal(cfg.model_type, 'switchyard_moe');
    assert.equal(cfg.router.kind, 'moe-plus-plus');
    assert.equal(run(['generate', out, '--prompt', 'the fox', '--max-new-tokens', '3']).code, 0);
    const ft = join(tmp, 'ft');
    const f = run(['train', '--out', ft, '--init', out, '--train-only', 'router', '--text', text, '--steps', '3', ...TINY.filter((_, i, a) => a[i] !== '--vocab' && a[i - 1] !== '--vocab')]);
    assert.equal(f.code, 0, f.err);
    assert.ok(existsSync(join(ft, 'model.safetensors')));
  });

  it('compare-routers writes report.html with a table and charts, and report.json', () => {
    const out = join(tmp, 'cmp');
    const r = run(['compare-routers', '--out', out, '--text', join(tmp, 'story.txt'), '--tokenizer', join(tmp, 'std'), '--routers', 'softmax-topk,relu', '--steps', '4', ...TINY.slice(0, -2)]);
    assert.equal(r.code, 0, r.err);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.match(html, /<td>relu<\/td>/);
    assert.equal((html.match(/<svg class="chart/g) ?? []).length, 3 + 2);
    const json = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as { summaries: { router: string; valLoss: number }[] };
    assert.deepEqual(json.summaries.map((s) => s.router), ['softmax-topk', 'relu']);
    assert.ok(json.summaries.every((s) => Number.isFinite(s.valLoss)));
  });

  it('bad settings: one line, exit 2', () => {
    for (const [args, pat] of [
      [['train', '--out', join(tmp, 'x'), '--router', 'nope'], /unknown router "nope"/],
      [['train', '--out', join(tmp, 'x'), '--top-k', '9', '--experts', '4'], /top-k 9 exceeds/],
      [['train', '--out', join(tmp, 'x'), '--train-only', 'router'], /needs --init/],
      [['train', '--out', join(tmp, 'x'), '--text', join(tmp, 'missing.txt')], /does not exist/],
      [['train', '--out', join(tmp, 'x'), '--lr', 'fast'], /--lr must be/],
    ] as [string[], RegExp][]) {
      const r = run(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.equal(r.err.trim().split('\n').length, 1, r.err);
      assert.match(r.err, pat);
    }
  });
});
