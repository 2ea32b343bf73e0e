/**
 * Byte-level BPE trained with Hugging Face `tokenizers` (Rust, Node binding) and saved as tokenizer.json: the vocabulary
 * layout, determinism, and that the runtime library (tokenizers.js, through src/io/tokenizer.ts) loads the file,
 * round-trips any text, and produces exactly the ids of the Rust library on the corpus.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer as RustTokenizer } from 'tokenizers';
import { byteLevelAlphabet, buildByteLevelBpe, trainByteLevelBpe, saveTokenizer, END_OF_TEXT, DEFAULT_VOCAB_SIZE, type TrainedTokenizer } from '../../src/data/train-tokenizer.js';
import { loadCorpusSplit, loadCorpusDocuments } from '../../src/data/corpus.js';
import { loadTokenizer, type TextCodec } from '../../src/io/tokenizer.js';

/** Strings that exercise the byte-level path: multi-byte UTF-8, astral characters, odd whitespace, the special token. */
const HARD = [
  'Once upon a time',
  'Once upon a time, there was a little girl who lived in a village near the forest.',
  '',
  ' ',
  '  leading and trailing spaces  ',
  'tabs\tand\r\nCRLF\n\n\nand blank lines',
  'héllo wörld — “curly quotes” ‘single’ … façade naïve',
  '日本語のテキスト, 中文, 한국어, Ελληνικά, русский, עברית, العربية',
  'emoji 🎉👩‍👩‍👧‍👦 flags 🇫🇷 skin 👍🏽 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
  '\u0000\u0001\u001f\u007f control bytes \u0085 NEL \u00a0 NBSP \u2028 LS \u200b ZWSP \ufeff BOM',
  `It's ${END_OF_TEXT} inside text, and <|endoftext| almost`,
  "contractions: don't, I'm, we've, they'll, she'd, it's; numbers 3.14159 and 1,000,000",
];

describe('byte-level alphabet', () => {
  it('maps the 256 bytes to 256 distinct characters, printable Latin-1 to themselves', () => {
    const a = byteLevelAlphabet();
    assert.equal(a.length, 256);
    assert.equal(new Set(a).size, 256);
    assert.equal(a[0x41], 'A');
    assert.equal(a[0x20], 'Ġ'); // GPT-2's space
    assert.equal(a[0x0a], 'Ċ'); // and newline
    assert.equal(a[0xe9], 'é');
  });
});

describe('buildByteLevelBpe', () => {
  it('lays out specials, then the 256 bytes in byte order, then merge products in merge order', () => {
    const t = buildByteLevelBpe([['Ġ', 't'], ['h', 'e'], ['Ġt', 'he'], ['x', 'y']], 260, [END_OF_TEXT]);
    const v = t.tokenizer.model.vocab;
    assert.equal(v[END_OF_TEXT], 0);
    assert.equal(v['A'], 1 + 0x41);
    assert.equal(v['Ġt'], 257);
    assert.equal(v['he'], 258);
    assert.equal(v['Ġthe'], 259);
    assert.equal(v['xy'], undefined); // cut at 260
    assert.equal(t.vocabSize, 260);
    assert.equal(t.merges, 3);
    assert.deepEqual(t.specialTokens, { [END_OF_TEXT]: 0 });
    assert.deepEqual(t.tokenizer.added_tokens.map((a) => [a.id, a.content, a.special]), [[0, END_OF_TEXT, true]]);
    assert.equal(t.config.eos_token, END_OF_TEXT);
    assert.equal(t.config.clean_up_tokenization_spaces, false);
  });

  it('gives several special tokens ids 0.. in order', () => {
    const t = buildByteLevelBpe([], 258, ['<|endoftext|>', '<|pad|>']);
    assert.equal(t.tokenizer.model.vocab['<|pad|>'], 1);
    assert.equal(t.tokenizer.model.vocab['!'], 2 + 0x21);
  });

  it('rejects merges of unknown parts, too-small vocabularies and duplicate specials', () => {
    assert.throws(() => buildByteLevelBpe([['ab', 'c']], 300), /no earlier merge/);
    assert.throws(() => buildByteLevelBpe([], 256), RangeError);
    assert.throws(() => buildByteLevelBpe([], 300, ['a', 'a']), /distinct/);
  });

  it('adds no id for a merge whose product already exists', () => {
    const t = buildByteLevelBpe([['a', 'b'], ['ab', 'c'], ['b', 'c'], ['a', 'bc']], 300);
    assert.equal(t.merges, 4);
    assert.equal(t.vocabSize, 257 + 3);
  });
});

describe('trainByteLevelBpe on a small text', () => {
  it('is deterministic and honours the vocabulary size', () => {
    const text = loadCorpusDocuments()[1]!.text.slice(0, 20000);
    const a = trainByteLevelBpe([text], { vocabSize: 400 });
    const b = trainByteLevelBpe([text], { vocabSize: 400 });
    assert.deepEqual(a.tokenizer, b.tokenizer);
    assert.equal(a.vocabSize, 400);
    assert.equal(a.merges, 400 - 257);
    assert.deepEqual(a.tokenizer.model.merges[0], ['Ġ', 't']);
  });

  it('stops early when the text has no more pairs to merge', () => {
    const t = trainByteLevelBpe(['ab ab ab'], { vocabSize: 4096 });
    assert.ok(t.vocabSize < 270, `${t.vocabSize}`);
  });
});

describe('tokenizer trained on the corpus', () => {
  let dir: string;
  let trained: TrainedTokenizer;
  let js: TextCodec;
  let rust: RustTokenizer;
  let validation: string;
  const rustIds = async (s: string): Promise<number[]> => (await rust.encode(s)).getIds();

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'switchyard-tok-'));
    const split = loadCorpusSplit();
    trained = trainByteLevelBpe(split.train, { vocabSize: DEFAULT_VOCAB_SIZE });
    saveTokenizer(dir, trained);
    js = loadTokenizer(dir);
    rust = RustTokenizer.fromFile(join(dir, 'tokenizer.json'));
    validation = split.validation.join('\n\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it(`has ${DEFAULT_VOCAB_SIZE} tokens, <|endoftext|> = 0, and is reproducible (training again gives the same file)`, () => {
    assert.equal(trained.vocabSize, DEFAULT_VOCAB_SIZE);
    assert.equal(trained.merges, DEFAULT_VOCAB_SIZE - 257);
    assert.equal(rust.getVocabSize(true), DEFAULT_VOCAB_SIZE);
    assert.equal(rust.tokenToId(END_OF_TEXT), 0);
    const again = trainByteLevelBpe(loadCorpusSplit().train, { vocabSize: DEFAULT_VOCAB_SIZE });
    assert.equal(JSON.stringify(again.tokenizer), JSON.stringify(trained.tokenizer));
    const file = readFileSync(join(dir, 'tokenizer.json'));
    assert.equal(JSON.stringify(JSON.parse(file.toString('utf8'))), JSON.stringify(trained.tokenizer));
  });

  it('matches the recorded SHA-256 of tokenizer.json (tokenizers 0.23.2; update README and this value together)', () => {
    const sha = createHash('sha256').update(readFileSync(join(dir, 'tokenizer.json'))).digest('hex');
    assert.equal(sha, '698d1b10b78d0c7f395a9c2e9520429b0e7691c321d6bd01008da0b8e699567b');
  });

  it('tokenizers.js decodes what it encodes, for any text', () => {
    for (const s of [...HARD, validation.slice(0, 20000)]) {
      const ids = js.encode(s);
      assert.ok(ids.every((i) => Number.isInteger(i) && i >= 0 && i < DEFAULT_VOCAB_SIZE));
      // tokenizers.js refuses to decode an empty id list.
      assert.equal(ids.length ? js.decode(ids) : '', s, JSON.stringify(s.slice(0, 40)));
    }
    assert.deepEqual(js.encode(END_OF_TEXT), [0]);
  });

  it('the Rust library decodes what it encodes too', async () => {
    for (const s of HARD) {
      const ids = await rustIds(s);
      assert.equal(await rust.decode(ids, false), s, JSON.stringify(s.slice(0, 40)));
    }
  });

  it('both libraries produce identical ids on the hard strings and the whole validation split', async () => {
    for (const s of HARD) assert.deepEqual(js.encode(s), await rustIds(s), JSON.stringify(s.slice(0, 40)));
    const a = js.encode(validation);
    const b = await rustIds(validation);
    assert.equal(a.length, b.length);
    assert.deepEqual(a, b);
    assert.equal(js.decode(a), validation);
    // English prose at this vocabulary: about 4 characters per token.
    const cpt = validation.length / a.length;
    assert.ok(cpt > 3.5 && cpt < 5, `${cpt} chars/token`);
  });

  it('encodes "Once upon a time" into few tokens that decode back', () => {
    const ids = js.encode('Once upon a time');
    assert.ok(ids.length <= 6, `${ids.length}`);
    assert.equal(js.decode(ids), 'Once upon a time');
  });
});
