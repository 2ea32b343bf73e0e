/**
 * Token pipeline: encoding with end-of-text separators, the token cache, the seeded batch sampler (same seed → same
 * batches, resume from serialised state → same continuation) and the deterministic validation iterator.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BatchSampler, encodeDocuments, encodeSplit, makeBatch, validationBatches, validationWindowCount, counterUniform,
  tokenCacheKey, saveTokenCache, loadTokenCache, loadOrEncodeTokens, type SamplerState, type TokenEncoder,
} from '../../src/data/token-dataset.js';
import { loadCorpusSplit } from '../../src/data/corpus.js';
import { trainByteLevelBpe, buildByteLevelBpe, saveTokenizer } from '../../src/data/train-tokenizer.js';
import { loadTokenizer } from '../../src/io/tokenizer.js';

/** One id per UTF-16 unit, offset by 1 so 0 is free for end-of-text. */
const charCodec: TokenEncoder = { encode: (s) => [...s].map((c) => c.charCodeAt(0) + 1) };

const seq = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => i);

describe('encoding', () => {
  it('puts the end-of-text id after every non-empty document', () => {
    assert.deepEqual([...encodeDocuments(charCodec, ['ab', '', 'c'], 0)], [98, 99, 0, 100, 0]);
    assert.deepEqual([...encodeDocuments(charCodec, ['ab', 'c'], null)], [98, 99, 100]);
    const s = encodeSplit(charCodec, { train: ['a'], validation: ['b'] }, 0);
    assert.deepEqual([[...s.train], [...s.validation]], [[98, 0], [99, 0]]);
  });

  it('caches token ids in a safetensors file keyed by tokenizer + text', () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-tokcache-'));
    try {
      const split = { train: ['hello', 'world'], validation: ['!'] };
      const key = tokenCacheKey('{"tok":1}', split, 0);
      assert.notEqual(key, tokenCacheKey('{"tok":2}', split, 0));
      assert.notEqual(key, tokenCacheKey('{"tok":1}', { train: ['hello', 'worle'], validation: ['!'] }, 0));
      assert.notEqual(key, tokenCacheKey('{"tok":1}', { train: ['hellow', 'orld'], validation: ['!'] }, 0));
      assert.notEqual(key, tokenCacheKey('{"tok":1}', split, null));
      const path = join(dir, 'sub', 'tokens.safetensors');
      assert.equal(loadTokenCache(path, key), null);
      let calls = 0;
      const encode = () => {
        calls++;
        return encodeSplit(charCodec, split, 0);
      };
      const a = loadOrEncodeTokens(path, key, encode);
      const b = loadOrEncodeTokens(path, key, encode);
      assert.equal(calls, 1);
      assert.deepEqual([...b.train], [...a.train]);
      assert.deepEqual([...b.validation], [...a.validation]);
      assert.ok(b.train instanceof Int32Array);
      assert.equal(loadTokenCache(path, 'other-key'), null);
      loadOrEncodeTokens(path, 'other-key', encode);
      assert.equal(calls, 2);
      saveTokenCache(path, { train: new Int32Array([1, 2, 3]), validation: new Int32Array(0) }, 'k');
      assert.deepEqual([...loadTokenCache(path, 'k')!.train], [1, 2, 3]);
      assert.equal(loadOrEncodeTokens(null, key, encode).train.length, a.train.length);
      writeFileSync(path, 'garbage');
      assert.throws(() => loadTokenCache(path, 'k'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('batches', () => {
  it('makeBatch: [B, S+1] windows, inputs = first S, targets = last S', () => {
    const b = makeBatch(seq(20), [0, 5, 16], 3);
    assert.equal(b.batchSize, 3);
    assert.equal(b.seqLen, 3);
    assert.deepEqual([...b.tokens], [0, 1, 2, 3, 5, 6, 7, 8, 16, 17, 18, 19]);
    assert.deepEqual([...b.inputs], [0, 1, 2, 5, 6, 7, 16, 17, 18]);
    assert.deepEqual([...b.targets], [1, 2, 3, 6, 7, 8, 17, 18, 19]);
    assert.throws(() => makeBatch(seq(20), [17], 3), RangeError);
  });

  it('counterUniform is in [0, 1), a pure function of (seed, step, row), and spreads evenly', () => {
    const buckets = new Array<number>(10).fill(0);
    for (let i = 0; i < 20000; i++) {
      const u = counterUniform(7, i >> 4, i & 15);
      assert.ok(u >= 0 && u < 1);
      buckets[Math.floor(u * 10)]!++;
    }
    for (const c of buckets) assert.ok(c > 1800 && c < 2200, `${buckets}`);
    assert.equal(counterUniform(1, 2, 3), counterUniform(1, 2, 3));
    assert.notEqual(counterUniform(1, 2, 3), counterUniform(2, 2, 3));
    assert.notEqual(counterUniform(1, 2, 3), counterUniform(1, 3, 3));
    assert.notEqual(counterUniform(1, 2, 3), counterUniform(1, 2, 4));
    assert.notEqual(counterUniform(1, 2 ** 32, 3), counterUniform(1, 0, 3));
  });

  it('same seed → same batches; another seed → other batches', () => {
    const data = seq(10000);
    const a = new BatchSampler(data, { batchSize: 4, seqLen: 16, seed: 42 });
    const b = new BatchSampler(data, { batchSize: 4, seqLen: 16, seed: 42 });
    const c = new BatchSampler(data, { batchSize: 4, seqLen: 16, seed: 43 });
    for (let i = 0; i < 20; i++) {
      const x = a.next();
      assert.deepEqual(x, b.next());
      assert.notDeepEqual(x.offsets, c.next().offsets);
      for (let r = 0; r < 4; r++) {
        // windows are consecutive tokens, and targets are inputs shifted by one
        assert.equal(x.tokens[r * 17 + 16], x.tokens[r * 17]! + 16);
        assert.equal(x.targets[r * 16], x.inputs[r * 16]! + 1);
      }
    }
    assert.equal(a.step, 20);
  });

  it('resuming from a JSON-serialised state continues with exactly the same batches', () => {
    const data = seq(5000);
    const ref = new BatchSampler(data, { batchSize: 3, seqLen: 8, seed: 1234 });
    const expected = Array.from({ length: 30 }, () => ref.next());
    const first = new BatchSampler(data, { batchSize: 3, seqLen: 8, seed: 1234 });
    for (let i = 0; i < 13; i++) assert.deepEqual(first.next(), expected[i]);
    const saved = JSON.stringify(first.state());
    const resumed = BatchSampler.fromState(data, JSON.parse(saved) as SamplerState);
    assert.equal(resumed.step, 13);
    for (let i = 13; i < 30; i++) assert.deepEqual(resumed.next(), expected[i]);
    assert.deepEqual(ref.batchAt(5), expected[5]);
    assert.throws(() => BatchSampler.fromState(seq(4999), JSON.parse(saved) as SamplerState), /5000 training tokens/);
  });

  it('every window start is reachable, including the last one', () => {
    const data = seq(12);
    const s = new BatchSampler(data, { batchSize: 8, seqLen: 4, seed: 0 });
    const seen = new Set<number>();
    for (let i = 0; i < 50; i++) for (const o of s.next().offsets) seen.add(o);
    assert.deepEqual([...seen].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('rejects bad shapes and too little data', () => {
    assert.throws(() => new BatchSampler(seq(10), { batchSize: 0, seqLen: 4, seed: 0 }), RangeError);
    assert.throws(() => new BatchSampler(seq(10), { batchSize: 1, seqLen: 1.5, seed: 0 }), RangeError);
    assert.throws(() => new BatchSampler(seq(4), { batchSize: 1, seqLen: 4, seed: 0 }), /at least 5/);
  });
});

describe('validation batches', () => {
  it('score every token after the first exactly once, in order, in full batches then a partial one', () => {
    const data = seq(23);
    const S = 4;
    assert.equal(validationWindowCount(23, S), 5);
    const batches = [...validationBatches(data, { batchSize: 2, seqLen: S })];
    assert.deepEqual(batches.map((b) => b.batchSize), [2, 2, 1]);
    const targets = batches.flatMap((b) => [...b.targets]);
    assert.deepEqual(targets, Array.from({ length: 20 }, (_, i) => i + 1));
    assert.deepEqual(batches.map((b) => b.offsets), [[0, 4], [8, 12], [16]]);
    assert.deepEqual([...validationBatches(data, { batchSize: 2, seqLen: S })], batches);
    assert.equal([...validationBatches(data, { batchSize: 2, seqLen: S, maxBatches: 1 })].length, 1);
    assert.equal([...validationBatches(seq(4), { batchSize: 2, seqLen: S })].length, 0);
    assert.equal(validationWindowCount(21, 4), 5);
    assert.equal(validationWindowCount(20, 4), 4);
  });
});

describe('on the corpus', () => {
  it('encodes the corpus split with a trained tokenizer: ids in range, one end-of-text per document', () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-tokds-'));
    try {
      const full = loadCorpusSplit();
      // A slice keeps this test fast; the tokenizer test covers the whole corpus.
      const split = { train: full.train.map((t) => t.slice(0, 30000)), validation: full.validation.map((t) => t.slice(0, 5000)) };
      const trained = trainByteLevelBpe(split.train, { vocabSize: 512 });
      saveTokenizer(dir, trained);
      const codec = loadTokenizer(dir);
      const tokens = encodeSplit(codec, split, trained.specialTokens['<|endoftext|>']!);
      assert.equal(tokens.train.filter((t) => t === 0).length, 6);
      assert.equal(tokens.validation.filter((t) => t === 0).length, 6);
      assert.ok(tokens.train.every((t) => t >= 0 && t < trained.vocabSize));
      const s = new BatchSampler(tokens.train, { batchSize: 2, seqLen: 32, seed: 0 });
      const b = s.next();
      assert.equal(b.inputs.length, 64);
      // decoding a window gives a piece of the text
      const text = codec.decode([...b.tokens.subarray(0, 33)]);
      assert.ok(split.train.some((t) => t.includes(text.replace(/<\|endoftext\|>[^]*$/, ''))));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('buildByteLevelBpe with no merges still encodes any text (bytes only)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-tokds-'));
    try {
      saveTokenizer(dir, buildByteLevelBpe([], 257));
      const codec = loadTokenizer(dir);
      const ids = codec.encode('é!');
      assert.deepEqual(ids, [1 + 0xc3, 1 + 0xa9, 1 + 0x21]);
      assert.equal(codec.decode(ids), 'é!');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
