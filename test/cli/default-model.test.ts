/**
 * The shipped default model: small enough to commit (≤ 20 MB), the README's main command produces text from it,
 * and its documented validation loss is reproduced by the *inference* engine on the held-out split (so the numbers
 * in models/default/README.md and training_log.json are true of the committed weights).
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { defaultModelDir } from '../../src/models/default-model.js';
import { loadModel } from '../../src/models/load.js';
import { loadTokenizer } from '../../src/io/tokenizer.js';
import { loadCorpusSplit } from '../../src/data/corpus.js';
import { encodeDocuments, validationBatches } from '../../src/data/token-dataset.js';
import { lmLoss } from '../../src/infer/lm-loss.js';

const dir = defaultModelDir();

it('is at most 20 MB on disk', () => {
  const bytes = readdirSync(dir).reduce((a, f) => a + statSync(join(dir, f)).size, 0);
  assert.ok(bytes <= 20e6, `${bytes} bytes`);
});

it('`switchyard generate "Once upon a time"` continues the prompt with the default model', () => {
  const r = spawnSync(process.execPath, [join(process.cwd(), 'dist/src/cli/main.js'), 'generate', 'Once upon a time', '--max-new-tokens', '24'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^Once upon a time\S*\s+\S+/);
  assert.ok(r.stdout.length > 'Once upon a time'.length + 20, r.stdout);
});

it('reproduces its documented validation loss with the inference engine (1e-3)', () => {
  const log = JSON.parse(readFileSync(join(dir, 'training_log.json'), 'utf8')) as { finalValLoss: number; train: { batchSize: number; seqLen: number; evalBatches: number } };
  const { model, spec } = loadModel(dir);
  const tok = loadTokenizer(dir);
  const val = encodeDocuments(tok, loadCorpusSplit().validation, 0);
  let total = 0;
  let n = 0;
  for (const b of validationBatches(val, { batchSize: log.train.batchSize, seqLen: log.train.seqLen, maxBatches: log.train.evalBatches })) {
    // lmLoss scores next tokens within each window's S+1 tokens: feed the S+1-token windows, score S predictions.
    const S1 = b.seqLen + 1;
    const logits = model.forward(b.tokens, b.batchSize).logits;
    total += lmLoss(logits, b.tokens, b.batchSize, S1, spec.vocabSize) * b.batchSize;
    n += b.batchSize;
  }
  const loss = total / n;
  assert.ok(Math.abs(loss - log.finalValLoss) < 1e-3, `inference validation loss ${loss} vs documented ${log.finalValLoss}`);
});
