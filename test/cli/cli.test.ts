/**
 * The `switchyard` command end to end: real processes, real files. Bad input must give one line on stderr,
 * exit code 2 and no stack trace; good input must produce what the library produces.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, copyFileSync, writeFileSync, readFileSync, readdirSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Fixture, FIXTURES } from '../helpers/fixtures.js';

const CLI = join(process.cwd(), 'dist/src/cli/main.js');

function run(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, SWITCHYARD_THREADS: '1' } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

function assertUserError(r: { code: number; err: string }, pattern: RegExp): void {
  assert.equal(r.code, 2, `exit code (stderr: ${r.err})`);
  const lines = r.err.trim().split('\n').filter((l) => !/^loading/.test(l));
  assert.equal(lines.length, 1, `one line expected, got:\n${r.err}`);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
}

describe('switchyard CLI', () => {
  let tmp: string;
  before(() => { tmp = mkdtempSync(join(tmpdir(), 'switchyard-cli-')); });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('inspect reports architecture, total and active parameters', () => {
    const r = run(['inspect', join(FIXTURES, 'mixtral')]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /architecture\s+mixtral/);
    const j = JSON.parse(run(['inspect', '--json', join(FIXTURES, 'mixtral')]).out) as { params: number; activeParams: number };
    // Independent count: fixture meta.json records the parameter count transformers reported.
    const meta = JSON.parse(readFileSync(join(FIXTURES, 'mixtral/meta.json'), 'utf8')) as { params: number };
    assert.equal(j.params, meta.params);
    // Mixtral fixture: 2 layers × 8 experts × 3 × 96 × 64 routed params, top-2 of 8 active.
    const routed = 2 * 8 * 3 * 96 * 64;
    assert.equal(j.activeParams, meta.params - routed * (6 / 8));
  });

  it('inspect --device webgpu sizes the stacked expert projections against the adapter', () => {
    const r = run(['inspect', '--json', '--device', 'webgpu', join(FIXTURES, 'mixtral')]);
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out) as { device: { device: string; largestExpertProjectionBytes: number; maxBindingBytes: number; fits: boolean } };
    assert.equal(j.device.device, 'webgpu');
    // Mixtral fixture: 8 experts × F 96 × D 64, f32.
    assert.equal(j.device.largestExpertProjectionBytes, 8 * 96 * 64 * 4);
    assert.equal(j.device.fits, j.device.largestExpertProjectionBytes <= j.device.maxBindingBytes);
  });

  it('generate with --prompt-ids reproduces the reference greedy tokens', () => {
    const fx = new Fixture('olmoe');
    const ids = fx.ints('input_ids').slice(0, fx.meta.gen_prompt);
    const want = fx.ints('generated_ids').slice(0, fx.meta.gen_prompt + fx.meta.gen_new);
    const r = run(['generate', fx.dir, '--prompt-ids', ids.join(','), '--max-new-tokens', String(fx.meta.gen_new), '--no-stop-at-eos']);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(r.out.trim().split(/\s+/).map(Number), want);
  });

  for (const device of ['webgpu', 'auto']) {
    it(`generate --device ${device} reproduces the reference greedy tokens`, () => {
      const fx = new Fixture('deepseek_v3');
      const ids = fx.ints('input_ids').slice(0, fx.meta.gen_prompt);
      const want = fx.ints('generated_ids').slice(0, fx.meta.gen_prompt + fx.meta.gen_new);
      const r = run(['generate', fx.dir, '--device', device, '--prompt-ids', ids.join(','), '--max-new-tokens', String(fx.meta.gen_new), '--no-stop-at-eos']);
      assert.equal(r.code, 0, r.err);
      assert.deepEqual(r.out.trim().split(/\s+/).map(Number), want);
      if (device === 'webgpu') assert.match(r.err, /on webgpu/);
    });
  }

  it('generate --prompt goes through tokenizer.json', () => {
    const dir = join(tmp, 'with-tokenizer');
    mkdirSync(dir);
    for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(FIXTURES, 'mixtral', f), join(dir, f));
    const vocab: Record<string, number> = {};
    for (let i = 0; i < 384; i++) vocab[`w${i}`] = i;
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({
      version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null,
      pre_tokenizer: { type: 'WhitespaceSplit' }, post_processor: null,
      decoder: null, model: { type: 'WordLevel', vocab, unk_token: 'w0' },
    }));
    const a = run(['generate', dir, '--prompt', 'w5 w6 w7', '--max-new-tokens', '4', '--no-stop-at-eos']);
    const b = run(['generate', dir, '--prompt-ids', '5,6,7', '--max-new-tokens', '4', '--no-stop-at-eos']);
    assert.equal(a.code, 0, a.err);
    assert.equal(b.code, 0, b.err);
    // Same tokens either way; with a tokenizer present, output is decoded text in both cases.
    const fromText = a.out.match(/w\d+/g)!.map((w) => Number(w.slice(1)));
    assert.deepEqual(fromText, b.out.match(/w\d+/g)!.map((w) => Number(w.slice(1))));
    assert.deepEqual(fromText.slice(0, 3), [5, 6, 7]);
    assert.equal(fromText.length, 7);
  });

  it('random-model writes a loadable checkpoint and leaves no temp files', () => {
    const dir = join(tmp, 'random');
    const w = run(['random-model', dir, '--arch', 'olmoe', '--layers', '2', '--hidden', '32', '--ffn', '16', '--experts', '4', '--top-k', '2', '--heads', '2', '--kv-heads', '1', '--vocab', '64']);
    assert.equal(w.code, 0, w.err);
    assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'model.safetensors']);
    const g = run(['generate', dir, '--prompt-ids', '1,2', '--max-new-tokens', '3', '--no-stop-at-eos']);
    assert.equal(g.code, 0, g.err);
    assert.equal(g.out.trim().split(/\s+/).length, 5);
  });

  describe('bad input: one line, exit 2', () => {
    it('missing folder', () => assertUserError(run(['inspect', join(tmp, 'nope')]), /does not exist/));
    it('folder without config.json', () => {
      const d = join(tmp, 'empty');
      mkdirSync(d);
      assertUserError(run(['inspect', d]), /no config\.json/);
    });
    it('unknown model_type lists the supported ones', () => {
      const d = join(tmp, 'unknown');
      mkdirSync(d);
      writeFileSync(join(d, 'config.json'), JSON.stringify({ model_type: 'llama4_moe' }));
      copyFileSync(join(FIXTURES, 'mixtral/model.safetensors'), join(d, 'model.safetensors'));
      assertUserError(run(['inspect', d]), /unknown model_type "llama4_moe" \(supported: .*mixtral.*qwen3_moe/);
    });
    /** A copy of the mixtral fixture in tmp/name with its config patched and/or its weights file rewritten. */
    const mixtralVariant = (name: string, o: { config?: Record<string, unknown>; weights?: (b: Buffer) => Buffer }): string => {
      const d = join(tmp, name);
      mkdirSync(d);
      const cfg = JSON.parse(readFileSync(join(FIXTURES, 'mixtral/config.json'), 'utf8')) as Record<string, unknown>;
      writeFileSync(join(d, 'config.json'), JSON.stringify({ ...cfg, ...o.config }));
      const w = Buffer.from(readFileSync(join(FIXTURES, 'mixtral/model.safetensors')));
      writeFileSync(join(d, 'model.safetensors'), o.weights ? o.weights(w) : w);
      return d;
    };
    it('truncated safetensors', () => {
      const d = mixtralVariant('truncated', { weights: (b) => b.subarray(0, 5000) });
      assertUserError(run(['inspect', d]), /model\.safetensors: .*(truncated|past the end)/);
    });
    it('lying header length', () => {
      const d = mixtralVariant('lying', { weights: (b) => { b.writeBigUInt64LE(1n << 40n, 0); return b; } });
      assertUserError(run(['inspect', d]), /header length/);
    });
    it('tensor of the wrong shape is named', () => {
      const d = mixtralVariant('wrongshape', { config: { num_key_value_heads: 4 } });
      assertUserError(run(['generate', d, '--prompt-ids', '1']), /model\.layers\.0\.self_attn\.k_proj\.weight has shape \[32, 64\], expected \[64, 64\]/);
    });
    it('missing tensor is named', () => {
      const d = mixtralVariant('missing', { config: { num_hidden_layers: 3 } });
      assertUserError(run(['generate', d, '--prompt-ids', '1']), /missing .*model\.layers\.2\./);
    });
    it('token id outside the vocabulary', () => assertUserError(run(['generate', join(FIXTURES, 'mixtral'), '--prompt-ids', '1,999']), /outside the vocabulary/));
    it('malformed --prompt-ids', () => assertUserError(run(['generate', join(FIXTURES, 'mixtral'), '--prompt-ids', '1,x']), /not a non-negative integer/));
    it('out-of-range flag', () => assertUserError(run(['generate', join(FIXTURES, 'mixtral'), '--prompt-ids', '1', '--top-p', '7']), /--top-p/));
    it('unknown command', () => assertUserError(run(['bogus']), /unknown command/));
    it('unknown --device', () => assertUserError(run(['generate', join(FIXTURES, 'mixtral'), '--device', 'gpu', '--prompt-ids', '1']), /--device.*cpu, webgpu, auto/));
    it('--device webgpu with a CPU-only feature says which', () => assertUserError(
      run(['generate', join(FIXTURES, 'mixtral'), '--device', 'webgpu', '--prompt-ids', '1', '--memory-budget', '1M']), /--memory-budget.*CPU only/));
    it('--device webgpu for training is refused', () => assertUserError(run(['train', '--out', join(tmp, 't'), '--device', 'webgpu']), /training runs on the CPU/));

  });
});
