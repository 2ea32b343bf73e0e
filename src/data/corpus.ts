/**
 * The built-in English training corpus: Jane Austen's six completed novels (public domain), stored as gzip files in
 * src/data/corpus/ (see the README there for sources, licences, sizes and checksums).
 *
 * Where the data lives at run time: tsc does not copy data files, so the compiled module (dist/src/data/corpus.js)
 * reads them from the source tree, `../../../src/data/corpus/` relative to itself. When the module runs from
 * src/data/ directly (a TypeScript loader) the folder is `./corpus/`. Both are tried, in that order. A published npm
 * package must therefore list `src/data/corpus/*.txt.gz` in package.json "files" (it ships dist/ and build/ only
 * today), or `SWITCHYARD_CORPUS_DIR` can point at a copy of the folder.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { UserError } from '../util/errors.js';

export interface CorpusEntry {
  /** Short identifier (file name without .txt.gz). */
  readonly id: string;
  readonly title: string;
  readonly author: string;
  /** Year of first publication. */
  readonly year: number;
  readonly file: string;
  /** UTF-8 byte length and SHA-256 (hex) of the decompressed text. */
  readonly bytes: number;
  readonly sha256: string;
}

export interface CorpusDocument extends CorpusEntry {
  readonly text: string;
}

/** The documents, in corpus order. Checksums are verified on load. */
export const CORPUS_ENTRIES: readonly CorpusEntry[] = [
  { id: 'sense-and-sensibility', title: 'Sense and Sensibility', author: 'Jane Austen', year: 1811, file: 'sense-and-sensibility.txt.gz', bytes: 669781, sha256: '60360f5c54d6b56c4278999cea691f672ff2b55929a39f3a106d94cf79e3ffad' },
  { id: 'pride-and-prejudice', title: 'Pride and Prejudice', author: 'Jane Austen', year: 1813, file: 'pride-and-prejudice.txt.gz', bytes: 683620, sha256: 'e739071c8708d3afd59aca3a98a43531d5939e84a9bccaeb28a93774dcfc065e' },
  { id: 'mansfield-park', title: 'Mansfield Park', author: 'Jane Austen', year: 1814, file: 'mansfield-park.txt.gz', bytes: 881604, sha256: '7de727ae3f8ab416810ed340d464a8bf9f91e7f7fccfc3b779cf0d746e635fec' },
  { id: 'emma', title: 'Emma', author: 'Jane Austen', year: 1815, file: 'emma.txt.gz', bytes: 881680, sha256: '4cdc5f387090ad2fc854b05a7039750f621f5aa10dd4b7335b7c6d9f1d2d21b4' },
  { id: 'northanger-abbey', title: 'Northanger Abbey', author: 'Jane Austen', year: 1817, file: 'northanger-abbey.txt.gz', bytes: 432800, sha256: '39dd16dc620790a64896a6ba671cc7e6255dc118f199a22738274348b074277c' },
  { id: 'persuasion', title: 'Persuasion', author: 'Jane Austen', year: 1817, file: 'persuasion.txt.gz', bytes: 464350, sha256: 'ea05f5bd05c12e0b8a04e80ff9f65cb37920658ac47d07a58f615733f93664d2' },
];

/** Separator between documents in `loadCorpusText()` (the token pipeline uses an end-of-text token instead). */
export const DOCUMENT_SEPARATOR = '\n\n';

/** Default share of each document held out for validation. */
export const DEFAULT_VALIDATION_FRACTION = 0.05;

/** The folder holding the corpus files (see the module comment for the lookup order). */
export function corpusDir(): string {
  const env = process.env['SWITCHYARD_CORPUS_DIR'];
  const candidates = [
    ...(env ? [env] : []),
    fileURLToPath(new URL('../../../src/data/corpus/', import.meta.url)),
    fileURLToPath(new URL('./corpus/', import.meta.url)),
  ];
  for (const dir of candidates) {
    if (existsSync(join(dir, CORPUS_ENTRIES[0]!.file))) return dir;
  }
  throw new UserError(`the built-in corpus was not found (looked in ${candidates.join(', ')}); set SWITCHYARD_CORPUS_DIR to the folder holding ${CORPUS_ENTRIES[0]!.file}`);
}

let cache: CorpusDocument[] | null = null;

/** All documents, decompressed and checksum-verified (cached after the first call). */
export function loadCorpusDocuments(): CorpusDocument[] {
  if (cache) return cache;
  const dir = corpusDir();
  cache = CORPUS_ENTRIES.map((e) => {
    const path = join(dir, e.file);
    let raw: Buffer;
    try {
      raw = gunzipSync(readFileSync(path));
    } catch (err) {
      throw new UserError(`cannot read corpus file ${path}: ${(err as Error).message}`);
    }
    const sha = createHash('sha256').update(raw).digest('hex');
    if (raw.length !== e.bytes || sha !== e.sha256) {
      throw new UserError(`corpus file ${path} is damaged: ${raw.length} bytes, sha256 ${sha}; expected ${e.bytes} bytes, sha256 ${e.sha256}`);
    }
    return { ...e, text: raw.toString('utf8') };
  });
  return cache;
}

/** The whole corpus as one string: the documents in order, joined by `DOCUMENT_SEPARATOR`. */
export function loadCorpusText(): string {
  return loadCorpusDocuments().map((d) => d.text).join(DOCUMENT_SEPARATOR);
}

export interface TextSplit {
  /** Train part of each document, in document order. */
  readonly train: string[];
  /** Validation part of each document, in document order (an entry may be empty for a tiny document). */
  readonly validation: string[];
}

/**
 * Deterministic train/validation split of one document: the last `fraction` of its characters, moved back to the
 * start of a paragraph (a "\n\n" boundary) so no paragraph is cut, is validation. A document without a paragraph
 * boundary in its second half is cut at the exact character position instead.
 */
export function splitDocument(text: string, fraction = DEFAULT_VALIDATION_FRACTION): { train: string; validation: string } {
  if (!(fraction >= 0 && fraction < 1)) throw new RangeError(`validation fraction must be in [0, 1), got ${fraction}`);
  if (fraction === 0 || text.length === 0) return { train: text, validation: '' };
  let cut = Math.floor(text.length * (1 - fraction));
  const para = text.lastIndexOf('\n\n', cut);
  if (para >= text.length / 2) cut = para + 2;
  // Never split a UTF-16 surrogate pair.
  const c = text.charCodeAt(cut - 1);
  if (cut > 0 && cut < text.length && c >= 0xd800 && c <= 0xdbff) cut--;
  return { train: text.slice(0, cut), validation: text.slice(cut) };
}

/** Split every document with `splitDocument`. */
export function splitCorpus(docs: readonly string[], fraction = DEFAULT_VALIDATION_FRACTION): TextSplit {
  const train: string[] = [];
  const validation: string[] = [];
  for (const d of docs) {
    const s = splitDocument(d, fraction);
    train.push(s.train);
    validation.push(s.validation);
  }
  return { train, validation };
}

/** The built-in corpus, split: the last ~5% of each novel (whole paragraphs) is validation. */
export function loadCorpusSplit(fraction = DEFAULT_VALIDATION_FRACTION): TextSplit {
  return splitCorpus(loadCorpusDocuments().map((d) => d.text), fraction);
}
