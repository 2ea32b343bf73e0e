/**
 * generate() / generateAsync() validate their options up front: before, a NaN temperature meant greedy, a negative
 * one sampled the least likely token, maxNewTokens NaN generated nothing and a fractional topK sliced oddly, all
 * silently. Each bad value must be a GenerationError (a one-line UserError) naming the option, and nothing may run.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { generate, generateAsync, GenerationError, type GenerateOptions } from '../../src/infer/generate.js';
import { loadModel, type LoadedModel } from '../../src/models/load.js';
import { DeviceCausalLM } from '../../src/models/device-causal-lm.js';
import { CpuOps } from '../../src/backend/cpu/cpu-ops.js';
import { Checkpoint } from '../../src/io/checkpoint.js';
import { UserError } from '../../src/util/errors.js';
import { FIXTURES } from '../helpers/fixtures.js';

let m: LoadedModel;
let dev: DeviceCausalLM<Float32Array, unknown, unknown>;
before(() => {
  const dir = join(FIXTURES, 'qwen3_moe');
  m = loadModel(dir);
  const ck = new Checkpoint(dir);
  // CpuOps' handle types are not exported as one name; the options under test do not depend on them.
  dev = new DeviceCausalLM(new CpuOps() as never, m.spec, ck) as unknown as DeviceCausalLM<Float32Array, unknown, unknown>;
  ck.close();
});

const PROMPT = [[1, 2, 3]];

/** Bad option → expected message part. Values a JavaScript caller can pass, hence the casts. */
const BAD: Array<[string, Partial<Record<keyof GenerateOptions, unknown>>, RegExp]> = [
  ['maxNewTokens NaN', { maxNewTokens: NaN }, /option maxNewTokens must be a positive integer, got NaN/],
  ['maxNewTokens 0', { maxNewTokens: 0 }, /option maxNewTokens must be a positive integer, got 0/],
  ['maxNewTokens -3', { maxNewTokens: -3 }, /maxNewTokens .* got -3/],
  ['maxNewTokens 2.5', { maxNewTokens: 2.5 }, /maxNewTokens .* got 2\.5/],
  ['maxNewTokens Infinity', { maxNewTokens: Infinity }, /maxNewTokens .* got Infinity/],
  ['maxNewTokens "4"', { maxNewTokens: '4' }, /maxNewTokens .* got "4"/],
  ['maxNewTokens missing', { maxNewTokens: undefined }, /maxNewTokens .* got undefined/],
  ['temperature NaN', { temperature: NaN }, /option temperature must be a finite number ≥ 0 \(0 = greedy\), got NaN/],
  ['temperature -1', { temperature: -1 }, /temperature .* got -1/],
  ['temperature Infinity', { temperature: Infinity }, /temperature .* got Infinity/],
  ['temperature "0.7"', { temperature: '0.7' }, /temperature .* got "0\.7"/],
  ['topK 2.5', { topK: 2.5 }, /option topK must be a non-negative integer \(0 = no limit\), got 2\.5/],
  ['topK -1', { topK: -1 }, /topK .* got -1/],
  ['topK NaN', { topK: NaN }, /topK .* got NaN/],
  ['topP 0', { topP: 0 }, /option topP must be a number in \(0, 1\], got 0/],
  ['topP 1.5', { topP: 1.5 }, /topP .* got 1\.5/],
  ['topP NaN', { topP: NaN }, /topP .* got NaN/],
  ['seed 1.5', { seed: 1.5 }, /option seed must be a safe integer, got 1\.5/],
  ['seed NaN', { seed: NaN }, /seed .* got NaN/],
  ['stopTokens [1.5]', { stopTokens: [1.5] }, /option stopTokens\[0\] must be a non-negative integer token id, got 1\.5/],
  ['stopTokens "2"', { stopTokens: '2' }, /option stopTokens must be an array/],
  ['onToken 5', { onToken: 5 }, /option onToken must be a function/],
  ['allowLonger "yes"', { allowLonger: 'yes' }, /option allowLonger must be a boolean/],
];

function expectGenerationError(e: unknown, re: RegExp): boolean {
  assert.ok(e instanceof GenerationError, `expected a GenerationError, got ${String(e)}`);
  assert.ok(e instanceof UserError, 'a UserError (the CLI prints it on one line, exit 2)');
  assert.ok(!/\n/.test(e.message), 'one line');
  assert.match(e.message, re);
  return true;
}

for (const [what, bad, re] of BAD) {
  test(`generate() rejects ${what}`, () => {
    const opts = { maxNewTokens: 2, ...bad } as GenerateOptions;
    assert.throws(() => generate(m.model, PROMPT, opts), (e) => expectGenerationError(e, re));
  });
  test(`generateAsync() rejects ${what}`, async () => {
    const opts = { maxNewTokens: 2, ...bad } as GenerateOptions;
    await assert.rejects(generateAsync(dev, PROMPT, opts), (e) => expectGenerationError(e, re));
  });
}

test('prompts: empty, unequal lengths, non-integer / negative / out-of-vocabulary ids are rejected', async () => {
  const V = m.spec.vocabSize;
  const cases: Array<[number[][], RegExp]> = [
    [[], /need at least one prompt/],
    [[[]], /prompts must not be empty/],
    [[[1, 2], [3]], /equal lengths \(prompt 0 has 2 tokens, prompt 1 has 1\)/],
    [[[1, 2.5]], /prompt 0 token 1 is 2\.5, not a token id of the vocabulary \(0\.\.383\)/],
    [[[1, -1]], /token 1 is -1/],
    [[[V]], new RegExp(`token 0 is ${V}, not a token id`)],
    [[[1, NaN]], /token 1 is NaN/],
  ];
  for (const [prompts, re] of cases) {
    assert.throws(() => generate(m.model, prompts, { maxNewTokens: 1 }), (e) => expectGenerationError(e, re));
    await assert.rejects(generateAsync(dev, prompts, { maxNewTokens: 1 }), (e) => expectGenerationError(e, re));
  }
});

test('valid edge values are accepted and behave as documented (control)', async () => {
  // temperature 0 = greedy; topK 0 = no limit; topP 1 = all; sampling is reproducible from the seed.
  const greedy = generate(m.model, PROMPT, { maxNewTokens: 3 });
  assert.deepEqual(generate(m.model, PROMPT, { maxNewTokens: 3, temperature: 0, topK: 0, topP: 1, seed: 0, stopTokens: [] }), greedy);
  assert.deepEqual(await generateAsync(dev, PROMPT, { maxNewTokens: 3 }), greedy);
  const a = generate(m.model, PROMPT, { maxNewTokens: 4, temperature: 0.8, topK: 5, topP: 0.9, seed: 7 });
  assert.deepEqual(generate(m.model, PROMPT, { maxNewTokens: 4, temperature: 0.8, topK: 5, topP: 0.9, seed: 7 }), a);
  // topK 1 at any temperature is greedy
  assert.deepEqual(generate(m.model, PROMPT, { maxNewTokens: 3, temperature: 5, topK: 1, seed: 3 }), greedy);
});
