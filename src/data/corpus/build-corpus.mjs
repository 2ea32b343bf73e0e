#!/usr/bin/env node
// Rebuilds the committed corpus files (src/data/corpus/*.txt.gz) from Debian's r-cran-janeaustenr package.
// This is a maintainer tool, not part of the build: the .txt.gz files it writes are committed.
//
//   cd /tmp && apt-get download r-cran-janeaustenr && dpkg-deb -x r-cran-janeaustenr_*_all.deb janeaustenr
//   node src/data/corpus/build-corpus.mjs /tmp/janeaustenr/usr/lib/R/site-library/janeaustenr/data
//
// The package stores each novel as an R character vector (one element per line of the Project Gutenberg text,
// without PG's header and footer) in an R lazy-load database (Rdata.rdx index + Rdata.rdb records). The small
// reader below decodes just enough of R's XDR serialisation format for that: pairlists, generic vectors,
// character/integer/logical/double vectors and symbols.
import { readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync, inflateSync, constants } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function rDeserialize(buf) {
  let p = 0;
  const int = () => {
    const v = buf.readInt32BE(p);
    p += 4;
    return v;
  };
  const refs = [];
  const item = () => {
    const flags = int();
    const type = flags & 0xff;
    const hasAttr = (flags & (1 << 9)) !== 0;
    const hasTag = (flags & (1 << 10)) !== 0;
    switch (type) {
      case 254: case 253: case 242: case 241: case 251: case 247: // NULL, environments, missing arg
        return null;
      case 255: // reference to an earlier symbol
        return refs[(flags >> 8) - 1];
      case 1: { // symbol
        const s = { sym: item() };
        refs.push(s);
        return s;
      }
      case 2: { // pairlist node
        const attr = hasAttr ? item() : null;
        const tag = hasTag ? item() : null;
        const car = item();
        const cdr = item();
        return { pairlist: true, tag, car, cdr, attr };
      }
      case 9: { // CHARSXP
        const n = int();
        if (n === -1) return null;
        const s = buf.subarray(p, p + n).toString('utf8');
        p += n;
        return s;
      }
      case 16: case 19: { // character vector, list
        const n = int();
        const vec = [];
        for (let i = 0; i < n; i++) vec.push(item());
        return { vec, attr: hasAttr ? item() : null };
      }
      case 10: case 13: { // logical, integer
        const n = int();
        const vec = [];
        for (let i = 0; i < n; i++) vec.push(int());
        return { vec, attr: hasAttr ? item() : null };
      }
      case 14: { // double
        const n = int();
        const vec = [];
        for (let i = 0; i < n; i++) { vec.push(buf.readDoubleBE(p)); p += 8; }
        return { vec, attr: hasAttr ? item() : null };
      }
      default:
        throw new Error(`unsupported R type ${type} at byte ${p}`);
    }
  };
  if (buf.subarray(0, 2).toString('latin1') !== 'X\n') throw new Error('not an XDR R serialisation');
  p = 2;
  const version = int();
  int(); // writer's R version
  int(); // minimal reader version
  if (version === 3) p += 4 + buf.readInt32BE(p); // native encoding name
  return item();
}

/** A named R list or a tagged pairlist as a JS object. */
function named(x) {
  const o = {};
  if (x && x.vec) {
    const names = named(x.attr).names.vec;
    names.forEach((n, i) => { o[n] = x.vec[i]; });
    return o;
  }
  for (let n = x; n && n.pairlist; n = n.cdr) o[n.tag.sym] = n.car;
  return o;
}

function readLazyLoadDb(dir) {
  const index = named(rDeserialize(gunzipSync(readFileSync(join(dir, 'Rdata.rdx')))));
  const rdb = readFileSync(join(dir, 'Rdata.rdb'));
  const out = {};
  for (const [name, loc] of Object.entries(named(index.variables))) {
    const [off, len] = loc.vec;
    const rec = rdb.subarray(off, off + len);
    const size = rec.readUInt32BE(0);
    if (rec[4] !== 0x78) throw new Error(`${name}: only zlib-compressed records are supported`);
    const raw = inflateSync(rec.subarray(4));
    if (raw.length !== size) throw new Error(`${name}: record inflates to ${raw.length} bytes, index says ${size}`);
    out[name] = rDeserialize(raw).vec;
  }
  return out;
}

/**
 * Clean one novel: drop the editors' bracketed notes and modern end notes, drop `_` italics markers, and unwrap
 * the hard-wrapped lines: each paragraph becomes one line, paragraphs are separated by one blank line.
 */
function clean(lines, cutFrom) {
  let ls = lines.map((l) => l ?? '');
  if (cutFrom) {
    const i = ls.findIndex((l) => l.trim() === cutFrom);
    if (i < 0) throw new Error(`marker ${cutFrom} not found`);
    ls = ls.slice(0, i);
  }
  const paras = [];
  let cur = [];
  const flush = () => {
    if (cur.length) paras.push(cur.join(' '));
    cur = [];
  };
  for (const l of ls) {
    const t = l.trim();
    if (t === '') flush();
    else cur.push(t);
  }
  flush();
  return paras
    // Editors' notes of the source editions, e.g. "[End volume one of this edition. Printed by ...]" and
    // "[At this point in the first and second editions, Volume 1 ends.]". ("[To Mrs. Weston.]" in Emma is
    // Austen's own letter heading and stays.)
    .filter((p) => !/^\[(End volume|At this point in the first)/.test(p))
    .map((p) => p.replace(/_/g, '').replace(/[ \t]+/g, ' ').trim())
    .filter((p) => p.length > 0)
    .join('\n\n') + '\n';
}

const NOVELS = [
  // [R variable, file, cut marker (a line where modern end matter starts)]
  ['sensesensibility', 'sense-and-sensibility.txt.gz'],
  ['prideprejudice', 'pride-and-prejudice.txt.gz'],
  ['mansfieldpark', 'mansfield-park.txt.gz'],
  ['emma', 'emma.txt.gz'],
  ['northangerabbey', 'northanger-abbey.txt.gz', 'A NOTE ON THE TEXT'],
  ['persuasion', 'persuasion.txt.gz'],
];

const dataDir = process.argv[2];
if (!dataDir) {
  console.error('usage: node build-corpus.mjs <janeaustenr data dir>');
  process.exit(2);
}
const outDir = dirname(fileURLToPath(import.meta.url));
const db = readLazyLoadDb(dataDir);
for (const [name, file, cut] of NOVELS) {
  const text = clean(db[name], cut);
  const bytes = Buffer.from(text, 'utf8');
  const gz = gzipSync(bytes, { level: constants.Z_BEST_COMPRESSION });
  writeFileSync(join(outDir, file), gz);
  const sha = createHash('sha256').update(bytes).digest('hex');
  console.log(`${file}\t${bytes.length} bytes\t${gz.length} gz\tsha256 ${sha}`);
}
