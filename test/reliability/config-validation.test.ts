/**
 * Config validation: every key the architectures read is checked for type and range before anything is built, with
 * a message naming the key (and the value); model_type is looked up as an own key; a config claiming more layers
 * than the checkpoint holds is refused before any weight is read; options the transformers modeling files read but
 * we do not implement are refused by name (the audit in docs/config-audit.md). One CLI run checks the one-line,
 * exit-2 contract end to end.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, fixtureNames } from '../helpers/fixtures.js';
import { Checkpoint } from '../../src/io/checkpoint.js';
import { specFor } from '../../src/models/registry.js';
import { UserError } from '../../src/util/errors.js';
import { specForNewModel } from '../../src/train/model/config.js';
import { TrainableLM } from '../../src/train/model/trainable-lm.js';
import type { Config } from '../../src/io/checkpoint.js';

const configOf = (fixture: string): Config => JSON.parse(readFileSync(join(FIXTURES, fixture, 'config.json'), 'utf8')) as Config;
const namesCache = new Map<string, ReadonlySet<string>>();
function namesOf(fixture: string): ReadonlySet<string> {
  let n = namesCache.get(fixture);
  if (!n) {
    const ck = new Checkpoint(join(FIXTURES, fixture));
    n = new Set(ck.names());
    ck.close();
    namesCache.set(fixture, n);
  }
  return n;
}

/** specFor on the fixture's config with `patch` applied (a value of `undefined` deletes the key). */
function specWith(fixture: string, patch: Record<string, unknown>): ReturnType<typeof specFor> {
  const cfg = { ...configOf(fixture) };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete cfg[k]; else cfg[k] = v;
  }
  return specFor(cfg, namesOf(fixture));
}

function rejects(fixture: string, patch: Record<string, unknown>, pattern: RegExp): void {
  assert.throws(() => specWith(fixture, patch), (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${String(e)}`);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

describe('config validation', () => {
  it('every fixture config is accepted (the validator does not over-reject)', () => {
    for (const f of fixtureNames()) assert.doesNotThrow(() => specWith(f, {}), f);
  });

  it('num_experts_per_tok 0 or more than the experts', () => {
    rejects('mixtral', { num_experts_per_tok: 0 }, /^config\.json: num_experts_per_tok must be an integer in \[1, num_local_experts=8\], got 0$/);
    rejects('mixtral', { num_experts_per_tok: 9 }, /num_experts_per_tok must be an integer in \[1, num_local_experts=8\], got 9/);
    rejects('olmoe', { num_experts_per_tok: 17 }, /num_experts_per_tok .*num_experts=16.*got 17/);
    rejects('qwen3_moe', { num_experts_per_tok: 17 }, /num_experts_per_tok .*num_local_experts=16.*got 17/);
    rejects('deepseek_v3', { num_experts_per_tok: 0 }, /num_experts_per_tok .*got 0/);
    rejects('gpt_oss', { num_experts_per_tok: 2.5 }, /num_experts_per_tok must be an integer.*got 2\.5/);
  });

  it('num_hidden_layers 0, absurd, fractional or a string', () => {
    rejects('mixtral', { num_hidden_layers: 0 }, /num_hidden_layers must be an integer in \[1, 1024\], got 0/);
    // Refused by its bound before anything is sized from it (a 1e9-entry layer array would exhaust V8's heap).
    rejects('mixtral', { num_hidden_layers: 1e9 }, /num_hidden_layers must be an integer in \[1, 1024\], got 1000000000/);
    rejects('olmoe', { num_hidden_layers: 2.5 }, /num_hidden_layers .*got 2\.5/);
    rejects('olmoe', { num_hidden_layers: '2' }, /num_hidden_layers .*got "2"/);
    rejects('qwen2_moe', { num_hidden_layers: undefined }, /num_hidden_layers is required for qwen2_moe but missing/);
  });

  it('a config claiming more layers than the checkpoint holds names the missing layer', () => {
    rejects('mixtral', { num_hidden_layers: 1000 }, /num_hidden_layers=1000, but the checkpoint is missing layer 2 \(no model\.layers\.2\.\* tensors/);
    rejects('deepseek_v2', { num_hidden_layers: 4 }, /missing layer 3/);
  });

  it('rope_theta "abc", 0, -1 (top level and in rope_parameters)', () => {
    for (const bad of ['abc', 0, -1]) {
      rejects('mixtral', { rope_theta: bad }, new RegExp(`^config\\.json: rope_theta must be a finite number in \\(0, ∞\\), got ${JSON.stringify(bad)}$`));
      rejects('olmoe', { rope_parameters: { rope_type: 'default', rope_theta: bad } }, /rope_parameters\.rope_theta must be a finite number/);
    }
    rejects('qwen3_moe', { rope_scaling: { type: 'linear', factor: '2' } }, /rope_scaling\.factor must be a finite number.*"2"/);
  });

  it('rope types the architecture does not implement are refused by name', () => {
    rejects('mixtral', { rope_parameters: { rope_type: 'dynamic', rope_theta: 1e6, factor: 2 } }, /rope_parameters\.rope_type="dynamic" is not supported for mixtral/);
    rejects('phimoe', { rope_parameters: { rope_type: 'yarn', rope_theta: 1e6, factor: 2 } }, /rope_type="yarn" is not supported for phimoe \(supported: default, longrope\)/);
    rejects('granitemoe', { rope_scaling: { type: 'llama3', factor: 8 } }, /rope_scaling\.type="llama3" is not supported/);
  });

  it('rms_norm_eps ≤ 0', () => {
    rejects('mixtral', { rms_norm_eps: 0 }, /rms_norm_eps must be a finite number in \(0, 1\), got 0/);
    rejects('phimoe', { rms_norm_eps: -1e-5 }, /rms_norm_eps .*got -0\.00001/);
    rejects('qwen3_moe', { rms_norm_eps: '1e-6' }, /rms_norm_eps .*got "1e-6"/);
  });

  it('partial_rotary_factor outside (0, 1]', () => {
    rejects('mixtral', { partial_rotary_factor: 0 }, /partial_rotary_factor must be a finite number in \(0, 1\], got 0/);
    rejects('mixtral', { partial_rotary_factor: 1.5 }, /partial_rotary_factor .*got 1\.5/);
    rejects('mixtral', { partial_rotary_factor: 0.01 }, /rotary dimension .* must be even and ≥ 2/);
  });

  it('booleans must be JSON booleans: tie_word_embeddings "false"', () => {
    rejects('mixtral', { tie_word_embeddings: 'false' }, /^config\.json: tie_word_embeddings must be true or false \(a JSON boolean\), got "false"$/);
    rejects('olmoe', { norm_topk_prob: 0 }, /norm_topk_prob must be true or false/);
    rejects('gpt_oss', { attention_bias: 'true' }, /attention_bias must be true or false/);
  });

  it('sliding_window 0', () => {
    rejects('mixtral', { sliding_window: 0 }, /sliding_window must be an integer in \[1, 16777216\], got 0/);
    rejects('gpt_oss', { sliding_window: -4 }, /sliding_window .*got -4/);
  });

  it('unknown hidden_act', () => {
    rejects('mixtral', { hidden_act: 'gelu' }, /hidden_act must be one of silu, swish for mixtral, got "gelu"/);
    rejects('deepseek_v3', { hidden_act: 'relu' }, /hidden_act .*got "relu"/);
    rejects('olmoe', { hidden_act: 1 }, /hidden_act must be a string, got 1/);
  });

  it('model_type "__proto__", "constructor", "toString" are unknown, not inherited properties', () => {
    for (const mt of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      rejects('mixtral', { model_type: mt }, new RegExp(`unknown model_type "${mt}" \\(supported: .*mixtral`));
    }
    // A JSON.parse'd "__proto__" key is an own property, not the prototype.
    const parsed = JSON.parse('{"model_type":"__proto__"}') as Config;
    assert.throws(() => specFor(parsed, new Set()), /unknown model_type "__proto__"/);
    rejects('mixtral', { model_type: 7 }, /has no model_type/);
  });

  it('sizes and head geometry', () => {
    rejects('mixtral', { hidden_size: '64' }, /hidden_size .*got "64"/);
    rejects('mixtral', { vocab_size: 2 ** 30 }, /vocab_size must be an integer in \[1, 16777216\]/);
    rejects('mixtral', { num_key_value_heads: 3 }, /num_attention_heads=4 must be a multiple of num_key_value_heads=3/);
    rejects('mixtral', { num_key_value_heads: 8 }, /num_key_value_heads must be an integer in \[1, num_attention_heads=4\], got 8/);
    rejects('olmoe', { num_attention_heads: 6 }, /hidden_size=64 must be a multiple of num_attention_heads=6/);
    rejects('deepseek_v2', { qk_rope_head_dim: 7 }, /qk_rope_head_dim must be even, got 7/);
    rejects('deepseek_v3', { n_group: 3 }, /n_routed_experts=16 must be a multiple of n_group=3/);
    rejects('deepseek_v3', { topk_group: 5 }, /topk_group must be an integer in \[1, n_group=4\], got 5/);
    rejects('qwen2_moe', { mlp_only_layers: [0, 2] }, /mlp_only_layers\[1\] must be an integer in \[0, num_hidden_layers-1=1\], got 2/);
    rejects('qwen3_moe', { decoder_sparse_step: 0 }, /decoder_sparse_step .*got 0/);
    rejects('gpt_oss', { layer_types: ['sliding_attention'] }, /layer_types must have num_hidden_layers=2 entries, got 1/);
    rejects('granitemoe', { logits_scaling: 0 }, /logits_scaling must be a finite number in \(0, ∞\), got 0/);
    rejects('mixtral', { eos_token_id: [2, '3'] }, /eos_token_id\[1\] .*got "3"/);
  });
});

/**
 * The audit (docs/config-audit.md): options a transformers modeling file reads whose non-default value we do not
 * implement. Each must be refused by name; the default value must still load (checked by the fixtures above).
 */
describe('config audit: unsupported options are refused by name', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['qwen2_moe', { use_sliding_window: true, sliding_window: 4 }, /use_sliding_window=true is not supported for qwen2_moe/],
    ['qwen2_moe', { layer_types: ['full_attention', 'sliding_attention'] }, /layer_types=.* is not supported for qwen2_moe/],
    ['qwen3_moe', { use_sliding_window: true, sliding_window: 4 }, /use_sliding_window=true is not supported for qwen3_moe/],
    ['olmoe', { head_dim: 8 }, /head_dim=8 is not supported for olmoe/],
    ['phimoe', { num_experts_per_tok: 4 }, /num_experts_per_tok=4 is not supported for phimoe \(sparsemixer routing is top-2 only\)/],
    ['deepseek_v2', { mlp_bias: true }, /mlp_bias=true is not supported for deepseek_v2/],
    ['deepseek_v3', { mlp_bias: true }, /mlp_bias=true is not supported for deepseek_v3/],
    ['deepseek_v2', { topk_method: 'noaux_tc' }, /topk_method must be one of greedy, group_limited_greedy for deepseek_v2, got "noaux_tc"/],
    ['deepseek_v3', { topk_method: 'greedy' }, /topk_method must be one of noaux_tc for deepseek_v3, got "greedy"/],
    ['granitemoe', { hidden_act: 'gelu' }, /hidden_act must be one of silu, swish for granitemoe/],
    ['qwen2_moe', { hidden_act: 'gelu_pytorch_tanh' }, /hidden_act .*qwen2_moe/],
  ];
  for (const [fixture, patch, pattern] of cases) {
    it(`${fixture}: ${JSON.stringify(patch)}`, () => rejects(fixture, patch, pattern));
  }

  it('clip_qkv is accepted for inference and refused by name for training', () => {
    const spec = specWith('olmoe', { clip_qkv: 2 });
    const attn = spec.layers[0]!.attention;
    assert.equal(attn.kind === 'gqa' ? attn.clipQkv : undefined, 2);
    rejects('olmoe', { clip_qkv: 0 }, /clip_qkv must be a finite number in \(0, ∞\), got 0/);
    rejects('olmoe', { clip_qkv: '8' }, /clip_qkv .*got "8"/);
    const cfg = { ...configOf('olmoe'), clip_qkv: 2 };
    assert.throws(() => TrainableLM.fromConfig(cfg, { seed: 1 }), (e: unknown) => e instanceof UserError && /clip_qkv is not supported for training/.test(e.message));
    // The same config without clip_qkv trains (the refusal is about the option, not the architecture).
    assert.doesNotThrow(() => specForNewModel(configOf('olmoe')));
  });
});

describe('config validation through the CLI', () => {
  let tmp = '';
  before(() => { tmp = mkdtempSync(join(tmpdir(), 'sy-cfg-')); });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('one line on stderr naming the key, exit code 2, no stack trace', () => {
    const d = join(tmp, 'm');
    mkdirSync(d);
    copyFileSync(join(FIXTURES, 'mixtral', 'model.safetensors'), join(d, 'model.safetensors'));
    writeFileSync(join(d, 'config.json'), JSON.stringify({ ...configOf('mixtral'), tie_word_embeddings: 'false' }));
    const r = spawnSync(process.execPath, [join(process.cwd(), 'dist/src/cli/main.js'), 'generate', d, '--prompt-ids', '1'], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    const lines = r.stderr.trim().split('\n').filter((l) => !/^loading/.test(l));
    assert.deepEqual(lines, ['switchyard: error: config.json: tie_word_embeddings must be true or false (a JSON boolean), got "false"']);
    assert.equal(r.stdout, '');
  });
});
