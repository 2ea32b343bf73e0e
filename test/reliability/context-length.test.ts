/**
 * Prompt + new tokens beyond the model's max_position_embeddings is a GenerationError before anything is allocated
 * or run (generate(), generateAsync() — so the CLI and WebGPU too), unless the caller passes `allowLonger`. A huge
 * prompt must fail at once, not after a prefill over a million positions.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate, generateAsync, GenerationError, type AsyncStepModel } from '../../src/infer/generate.js';
import { loadModel, type LoadedModel } from '../../src/models/load.js';
import type { CausalLM } from '../../src/models/causal-lm.js';
import { FIXTURES } from '../helpers/fixtures.js';

const SRC = join(FIXTURES, 'qwen3_moe');
const LIMIT = 8;
let dir: string;
let small: LoadedModel;
let orig: LoadedModel;

before(() => {
  // The fixture with max_position_embeddings lowered to 8 (it has default RoPE, whose angles do not depend on it).
  dir = mkdtempSync(join(tmpdir(), 'sy-ctx-'));
  const cfg = JSON.parse(readFileSync(join(SRC, 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal((cfg['rope_scaling'] as { rope_type?: string } | null | undefined)?.rope_type ?? 'default', 'default', 'precondition: default RoPE');
  cfg['max_position_embeddings'] = LIMIT;
  writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
  copyFileSync(join(SRC, 'model.safetensors'), join(dir, 'model.safetensors'));
  small = loadModel(dir);
  orig = loadModel(SRC);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A model whose cache and forward must never be reached (proves the check runs before any allocation). */
function untouchable(spec: { vocabSize: number; maxPositions: number }): AsyncStepModel<unknown> & CausalLM {
  const no = (): never => { throw new Error('allocation or forward ran before the context-length check'); };
  // Only spec, newCache and forward are used by generate()/generateAsync(); the rest of CausalLM is irrelevant here.
  return { spec, newCache: no, forward: no } as unknown as AsyncStepModel<unknown> & CausalLM;
}

const CTX_RE = (p: number, n: number, limit: number): RegExp =>
  new RegExp(`the prompt \\(${p} tokens\\) \\+ maxNewTokens \\(${n}\\) = ${p + n} positions exceeds the model's context length \\(max_position_embeddings ${limit}\\).*allowLonger`);

test('prompt + maxNewTokens over the limit is refused by generate() and generateAsync(); at the limit it runs', async () => {
  assert.equal(small.spec.maxPositions, LIMIT);
  const p = [1, 2, 3, 4, 5, 6];
  assert.throws(() => generate(small.model, [p], { maxNewTokens: 3 }), (e) => e instanceof GenerationError && CTX_RE(6, 3, LIMIT).test(e.message));
  await assert.rejects(generateAsync(untouchable({ vocabSize: 384, maxPositions: LIMIT }), [p], { maxNewTokens: 3 }), CTX_RE(6, 3, LIMIT));
  // exactly at the limit: allowed (control), and it is the original model's output
  const atLimit = generate(small.model, [p], { maxNewTokens: 2 });
  assert.equal(atLimit[0]!.length, LIMIT);
  assert.deepEqual(atLimit, generate(orig.model, [p], { maxNewTokens: 2 }));
  // a prompt alone longer than the limit
  assert.throws(() => generate(small.model, [[...p, 7, 8, 9]], { maxNewTokens: 1 }), CTX_RE(9, 1, LIMIT));
});

test('a 1M-token prompt fails before any cache or forward exists', async () => {
  const huge = new Array<number>(1_000_000).fill(1);
  const model = untouchable({ vocabSize: 384, maxPositions: 4096 });
  assert.throws(() => generate(model, [huge], { maxNewTokens: 1 }), CTX_RE(1_000_000, 1, 4096));
  await assert.rejects(generateAsync(model, [huge], { maxNewTokens: 1 }), CTX_RE(1_000_000, 1, 4096));
});

test('allowLonger runs past the limit and computes what the same model without the limit computes', async () => {
  const p = [5, 9, 2, 7, 1, 3];
  const n = 6; // 12 positions, limit 8
  const longer = generate(small.model, [p], { maxNewTokens: n, allowLonger: true });
  assert.equal(longer[0]!.length, p.length + n);
  // The reference: the unmodified fixture (limit 256) — positions 8..11 must be computed the same way.
  assert.deepEqual(longer, generate(orig.model, [p], { maxNewTokens: n }));
  // allowLonger: false is the default behaviour
  assert.throws(() => generate(small.model, [p], { maxNewTokens: n, allowLonger: false }), CTX_RE(6, 6, LIMIT));
});
