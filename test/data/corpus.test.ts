/** The built-in corpus: files present and checksummed, no Project Gutenberg boilerplate, a deterministic split. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CORPUS_ENTRIES, loadCorpusDocuments, loadCorpusText, loadCorpusSplit, splitDocument, splitCorpus, DOCUMENT_SEPARATOR } from '../../src/data/corpus.js';

describe('corpus', () => {
  it('loads six novels whose sizes and SHA-256 match the manifest (1–5 MB in all)', () => {
    const docs = loadCorpusDocuments();
    assert.equal(docs.length, 6);
    assert.deepEqual(docs.map((d) => d.id), CORPUS_ENTRIES.map((e) => e.id));
    for (const d of docs) assert.equal(Buffer.byteLength(d.text, 'utf8'), d.bytes);
    const total = docs.reduce((a, d) => a + d.bytes, 0);
    assert.ok(total > 1e6 && total < 5e6, `${total} bytes`);
    assert.equal(loadCorpusText().length, docs.reduce((a, d) => a + d.text.length, 0) + DOCUMENT_SEPARATOR.length * 5);
  });

  it('holds the novels only: no Project Gutenberg licence text, no modern editorial notes, no italics underscores', () => {
    const text = loadCorpusText();
    for (const bad of [/gutenberg/i, /Signet/, /NOTE ON THE TEXT/, /\[End volume/, /\[At this point/, /_/, /\r/]) assert.doesNotMatch(text, bad);
    assert.match(text, /^SENSE AND SENSIBILITY\n\nby Jane Austen/);
    assert.match(text, /It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife\./);
  });

  it('is unwrapped: one paragraph per line, paragraphs separated by exactly one blank line', () => {
    for (const d of loadCorpusDocuments()) {
      assert.doesNotMatch(d.text, /\n\n\n/);
      assert.ok(d.text.endsWith('\n') && !d.text.endsWith('\n\n'));
      for (const para of d.text.trimEnd().split('\n\n')) assert.doesNotMatch(para, /\n|^ | $| {2}/);
    }
  });

  it('splits every document deterministically: the last ~5% (whole paragraphs) is validation', () => {
    const a = loadCorpusSplit();
    const b = loadCorpusSplit();
    assert.deepEqual(a, b);
    loadCorpusDocuments().forEach((d, i) => {
      assert.equal(a.train[i]! + a.validation[i]!, d.text);
      const frac = a.validation[i]!.length / d.text.length;
      assert.ok(frac > 0.04 && frac < 0.07, `${d.id}: ${frac}`);
      assert.ok(a.train[i]!.endsWith('\n\n'), d.id);
    });
  });

  it('splitDocument: fraction 0, tiny texts, texts without paragraph breaks, bad fractions', () => {
    assert.deepEqual(splitDocument('abc', 0), { train: 'abc', validation: '' });
    assert.deepEqual(splitDocument('', 0.1), { train: '', validation: '' });
    const s = 'x'.repeat(100);
    assert.deepEqual(splitDocument(s, 0.1), { train: 'x'.repeat(90), validation: 'x'.repeat(10) });
    const p = `${'a'.repeat(60)}\n\n${'b'.repeat(40)}`;
    assert.deepEqual(splitDocument(p, 0.1), { train: `${'a'.repeat(60)}\n\n`, validation: 'b'.repeat(40) });
    assert.throws(() => splitDocument('abc', 1), RangeError);
    assert.throws(() => splitDocument('abc', -0.1), RangeError);
    // A surrogate pair is never cut.
    const emoji = '😀'.repeat(10);
    const e = splitDocument(emoji, 0.15);
    assert.equal(e.train + e.validation, emoji);
    assert.ok(!/[\ud800-\udbff]$/.test(e.train));
    assert.deepEqual(splitCorpus(['abc', 'x'.repeat(100)], 0.1).validation, ['c', 'x'.repeat(10)]);
  });
});
