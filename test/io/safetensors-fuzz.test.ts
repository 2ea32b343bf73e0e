/**
 * Deterministic fuzzing of the safetensors reader. Thousands of files are derived from valid ones by byte-level
 * and JSON-level mutations. For each: opening either succeeds or throws a SafetensorsError (anything else is a
 * bug); while the header is validated only the length prefix and header are read; and if opening succeeds,
 * every tensor can be read and every read stays inside the file (checked by a spying ByteSource).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SafetensorsFile, encodeSafetensors, MAX_HEADER_BYTES, type TensorToWrite } from '../../src/io/safetensors.js';
import { BufferSource, type ByteSource } from '../../src/io/byte-source.js';
import { SafetensorsError } from '../../src/util/errors.js';

// ---- seeded randomness ----------------------------------------------------------------------------------

class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** mulberry32: uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

// ---- spying ByteSource ----------------------------------------------------------------------------------

/** Wraps a ByteSource; asserts every read lies inside [0, size) and that no read goes past `limit` while set. */
class SpySource implements ByteSource {
  readonly reads: Array<[number, number]> = [];
  readonly violations: string[] = [];
  /** While set, reads must end at or before this byte (the end of the header during validation). */
  limit: number | undefined;
  constructor(private readonly inner: ByteSource) {}
  get size(): number {
    return this.inner.size;
  }
  get label(): string {
    return this.inner.label;
  }
  read(offset: number, length: number, into?: Uint8Array): Uint8Array {
    this.reads.push([offset, length]);
    // recorded as well as thrown, so a reader that swallowed the assertion would still be caught
    const bad = !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length <= 0 || offset + length > this.size ||
      (this.limit !== undefined && offset + length > this.limit);
    if (bad) this.violations.push(`[${offset}, ${offset + length}) of ${this.size} (limit ${this.limit})`);
    assert.ok(Number.isSafeInteger(offset) && Number.isSafeInteger(length), `non-integer read ${offset}+${length}`);
    assert.ok(offset >= 0 && length > 0, `read of ${length} bytes at ${offset}`);
    assert.ok(offset + length <= this.size, `read [${offset}, ${offset + length}) outside a ${this.size}-byte file`);
    if (this.limit !== undefined) assert.ok(offset + length <= this.limit, `read [${offset}, ${offset + length}) beyond the header (${this.limit}) during validation`);
    const out = this.inner.read(offset, length, into);
    assert.equal(out.length, length);
    return out;
  }
  close(): void {
    this.inner.close();
  }
}

const DTYPE_SIZES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, U16: 2, U32: 4, U64: 8, F8_E4M3: 1, F8_E5M2: 1,
};

/** Every rejection message contains one of these (one per validation rule). */
const REASONS = [
  'too short for a safetensors header', 'byte limit', 'runs past the end of the file', 'is too small', 'not valid UTF-8',
  'not valid JSON', 'header is not a JSON object', 'is not an object (got', 'unknown dtype', 'invalid shape', 'too many elements',
  'invalid data_offsets', 'with end before begin', 'bytes but data_offsets', 'has a gap', 'trailing bytes', 'data section', 'overlap',
  '__metadata__ is not an object', 'is not a string',
] as const;

interface Outcome {
  opened: boolean;
  error?: string;
}

/** Opens `bytes` through the spy and checks every invariant. */
function check(bytes: Uint8Array, what: string): Outcome {
  const spy = new SpySource(new BufferSource(bytes, 'fuzz.safetensors'));
  // during validation, reads may not go past the header the prefix announces (nor past the file)
  if (bytes.length >= 8) {
    const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
    spy.limit = Number(BigInt(8) + (n < BigInt(bytes.length) ? n : BigInt(bytes.length)));
  } else {
    spy.limit = bytes.length;
  }
  let f: SafetensorsFile;
  try {
    f = new SafetensorsFile(spy);
  } catch (e) {
    assert.deepEqual(spy.violations, [], `${what}: out-of-range reads`);
    if (!(e instanceof SafetensorsError)) {
      assert.fail(`${what}: opening threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)} instead of a SafetensorsError`);
    }
    assert.ok(e.message.startsWith('fuzz.safetensors: '), `${what}: message does not name the file: ${e.message}`);
    assert.ok(!/[\n\r\u2028\u2029]/.test(e.message), `${what}: message is not one line: ${JSON.stringify(e.message)}`);
    const reason = REASONS.find((k) => e.message.includes(k));
    assert.ok(reason, `${what}: unexpected rejection message: ${e.message}`);
    return { opened: false, error: reason };
  }
  spy.limit = undefined;
  // independent checks of what the reader accepted
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  assert.ok(n <= MAX_HEADER_BYTES && 8 + n <= bytes.length, `${what}: accepted header length ${n}`);
  const ranges: Array<[number, number, string]> = [];
  for (const [name, t] of f.tensors) {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    assert.ok(t.shape.every((d) => Number.isSafeInteger(d) && d >= 0), `${what}: ${name} shape ${t.shape}`);
    assert.equal(t.byteLength, numel * DTYPE_SIZES[t.dtype]!, `${what}: ${name} byte length`);
    assert.ok(t.offset >= 8 + n && t.offset + t.byteLength <= bytes.length, `${what}: ${name} at ${t.offset}+${t.byteLength}`);
    if (t.byteLength > 0) ranges.push([t.offset, t.offset + t.byteLength, name]);
    const b = f.bytes(name);
    assert.equal(b.length, t.byteLength);
    assert.ok(Buffer.from(b).equals(bytes.subarray(t.offset, t.offset + t.byteLength)), `${what}: ${name} bytes`);
    const dst = new Uint8Array(t.byteLength);
    f.readInto(name, dst);
  }
  assert.deepEqual(spy.violations, [], `${what}: out-of-range reads`);
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) assert.ok(ranges[i]![0] >= ranges[i - 1]![1], `${what}: ${ranges[i - 1]![2]} and ${ranges[i]![2]} overlap`);
  // the tensors tile the data section exactly: no gap, no trailing bytes (the reference implementation's rule)
  let cursor = 8 + n;
  for (const [b, e, name] of ranges) {
    assert.equal(b, cursor, `${what}: gap before ${name}`);
    cursor = e;
  }
  assert.equal(cursor, bytes.length, `${what}: trailing bytes after the last tensor`);
  for (const [k, v] of Object.entries(f.metadata)) assert.equal(typeof v, 'string', `${what}: metadata ${k}`);
  return { opened: true };
}

// ---- valid seed files -----------------------------------------------------------------------------------

function bytesOf(r: Rng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = r.int(256);
  return b;
}

function seedFiles(r: Rng): Uint8Array[] {
  const files: Uint8Array[] = [];
  const dtypes = Object.keys(DTYPE_SIZES);
  for (let k = 0; k < 8; k++) {
    const tensors: Record<string, TensorToWrite> = {};
    const count = 1 + r.int(6);
    for (let i = 0; i < count; i++) {
      const dtype = r.pick(dtypes);
      const rank = r.int(4);
      const shape = Array.from({ length: rank }, () => (r.chance(0.1) ? 0 : 1 + r.int(5)));
      const numel = shape.reduce((a, b) => a * b, 1);
      tensors[`model.layers.${i}.${r.pick(['w1', 'w2', 'gate', 'émb', 'q"k'])}.weight`] = { dtype, shape, data: bytesOf(r, numel * DTYPE_SIZES[dtype]!) };
    }
    files.push(encodeSafetensors(tensors, r.chance(0.5) ? { format: 'pt', seed: String(k) } : undefined));
  }
  files.push(encodeSafetensors({}));
  return files;
}

function split(file: Uint8Array): { n: number; header: Record<string, unknown>; data: Uint8Array } {
  const n = Number(new DataView(file.buffer, file.byteOffset, 8).getBigUint64(0, true));
  return { n, header: JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n))) as Record<string, unknown>, data: file.subarray(8 + n) };
}

/** The header length the prefix announces, clamped to what the file holds (for files already mangled). */
function hlen(file: Uint8Array): number {
  if (file.length < 8) return 0;
  const n = new DataView(file.buffer, file.byteOffset, 8).getBigUint64(0, true);
  return Number(n < BigInt(file.length - 8) ? n : BigInt(file.length - 8));
}

function assemble(header: Uint8Array | string, data: Uint8Array, len?: bigint): Uint8Array {
  const h = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, len ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

// ---- mutators -------------------------------------------------------------------------------------------

const WEIRD_NUMBERS: unknown[] = [
  -1, -8, 0.5, 1.5, 1e300, -1e300, 2 ** 53, 2 ** 53 + 2, 2 ** 64, Number.MAX_SAFE_INTEGER, -0, 1e-300, 4294967296, 2 ** 31,
  '4', null, true, [], {}, [4],
];

type Mutator = (file: Uint8Array, r: Rng) => Uint8Array;

const byteMutators: Record<string, Mutator> = {
  prefixBitFlip: (f, r) => {
    if (f.length < 8) return f;
    const g = f.slice();
    g[r.int(8)]! ^= 1 << r.int(8);
    return g;
  },
  prefixByteSet: (f, r) => {
    if (f.length < 8) return f;
    const g = f.slice();
    g[r.int(8)] = r.pick([0, 1, 0x7f, 0x80, 0xff, r.int(256)]);
    return g;
  },
  randomHeaderLength: (f, r) => {
    if (f.length < 8) return f;
    const g = f.slice();
    const n = hlen(f);
    const choices = [
      BigInt(r.int(2 ** 32)) * 2n ** 32n + BigInt(r.int(2 ** 32)),
      BigInt(r.int(64)),
      BigInt(n + r.int(17) - 8),
      BigInt(f.length - 8 + r.int(5) - 2),
      BigInt(MAX_HEADER_BYTES + r.int(3) - 1),
      2n ** 64n - 1n,
      2n ** 32n + BigInt(n),
    ];
    let v = r.pick(choices);
    if (v < 0n) v = 0n;
    new DataView(g.buffer).setBigUint64(0, v, true);
    return g;
  },
  headerBitFlips: (f, r) => {
    const g = f.slice();
    const n = hlen(f);
    if (n === 0) return g;
    const flips = 1 + r.int(4);
    for (let i = 0; i < flips; i++) g[8 + r.int(n)]! ^= 1 << r.int(8);
    return g;
  },
  headerByteSet: (f, r) => {
    const g = f.slice();
    const n = hlen(f);
    if (n === 0) return g;
    const flips = 1 + r.int(3);
    for (let i = 0; i < flips; i++) g[8 + r.int(n)] = r.pick([0x22, 0x2c, 0x5b, 0x5d, 0x7b, 0x7d, 0x30, 0x39, 0x2d, 0x2e, 0x65, 0x20, 0, 0xff, 0xc3, 0x80, r.int(256)]);
    return g;
  },
  digitTweak: (f, r) => {
    // change one digit inside the header (offsets and shapes become slightly wrong)
    const g = f.slice();
    const n = hlen(f);
    const digits: number[] = [];
    for (let i = 8; i < 8 + n; i++) if (g[i]! >= 0x30 && g[i]! <= 0x39) digits.push(i);
    if (digits.length) g[r.pick(digits)] = 0x30 + r.int(10);
    return g;
  },
  truncate: (f, r) => f.slice(0, r.int(f.length)),
  truncateNearEnd: (f, r) => f.slice(0, Math.max(0, f.length - 1 - r.int(16))),
  extend: (f, r) => {
    const g = new Uint8Array(f.length + 1 + r.int(32));
    g.set(f);
    return g;
  },
  invalidUtf8: (f, r) => {
    const n = hlen(f);
    const text = new TextDecoder().decode(f.subarray(8, 8 + n));
    const data = f.subarray(8 + n);
    const at = text.indexOf('"', r.int(text.length)) + 1 || 1; // inside a string, usually
    const bad = r.pick([[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf8, 0x88, 0x80, 0x80, 0x80], [0x80], [0xf4, 0x90, 0x80, 0x80], [0xef, 0xbb, 0xbf]]);
    const enc = new TextEncoder().encode(text);
    const cut = Math.min(new TextEncoder().encode(text.slice(0, at)).length, enc.length);
    const h = new Uint8Array(enc.length + bad.length);
    h.set(enc.subarray(0, cut));
    h.set(bad, cut);
    h.set(enc.subarray(cut), cut + bad.length);
    return assemble(h, data);
  },
};

function tensorNames(h: Record<string, unknown>): string[] {
  return Object.keys(h).filter((k) => k !== '__metadata__');
}

type JsonMutator = (h: Record<string, unknown>, dataLen: number, r: Rng) => string | Record<string, unknown>;

function entry(h: Record<string, unknown>, r: Rng): Record<string, unknown> | undefined {
  const names = tensorNames(h);
  if (!names.length) {
    h['new'] = { dtype: 'F32', shape: [1], data_offsets: [0, 4] };
    return h['new'] as Record<string, unknown>;
  }
  return h[r.pick(names)] as Record<string, unknown>;
}

const jsonMutators: Record<string, JsonMutator> = {
  wrongDtype: (h, _d, r) => {
    const e = entry(h, r)!;
    e['dtype'] = r.pick(['F128', 'f32', '', 'toString', '__proto__', 'constructor', 'valueOf', 5, null, ['F32'], { F32: 1 }, 'BF16', 'U8', 'F64', 'BOOL']);
    return h;
  },
  weirdOffset: (h, _d, r) => {
    const e = entry(h, r)!;
    const o = [...((e['data_offsets'] as unknown[]) ?? [0, 0])];
    o[r.int(2)] = r.pick(WEIRD_NUMBERS);
    e['data_offsets'] = r.chance(0.1) ? o.slice(0, r.int(2)) : r.chance(0.05) ? [...o, 0] : o;
    return h;
  },
  shiftOffsets: (h, d, r) => {
    const e = entry(h, r)!;
    const [b, end] = e['data_offsets'] as [number, number];
    const delta = r.pick([-8, -4, -2, -1, 1, 2, 4, 8, d, -b, d - end, d - end + 1]);
    e['data_offsets'] = [b + delta, end + delta];
    return h;
  },
  overlap: (h, _d, r) => {
    const names = tensorNames(h);
    if (names.length < 2) return h;
    const a = h[r.pick(names)] as Record<string, unknown>;
    const b = h[r.pick(names)] as Record<string, unknown>;
    const [ab, ae] = a['data_offsets'] as [number, number];
    const [bb, be] = b['data_offsets'] as [number, number];
    const mid = ab + r.int(Math.max(1, ae - ab));
    b['data_offsets'] = [mid, mid + (be - bb)];
    return h;
  },
  outOfRange: (h, d, r) => {
    const e = entry(h, r)!;
    const [b, end] = e['data_offsets'] as [number, number];
    const len = end - b;
    const start = r.pick([d - len + 1, d, d + 1, 2 ** 40, Number.MAX_SAFE_INTEGER - len, Number.MAX_SAFE_INTEGER]);
    e['data_offsets'] = [start, start + len];
    return h;
  },
  shapeDisagrees: (h, _d, r) => {
    const e = entry(h, r)!;
    const s = [...((e['shape'] as number[]) ?? [])];
    const k = r.int(4);
    if (k === 0) s.push(r.pick([0, 2, 3]));
    else if (k === 1) s.pop();
    else if (k === 2 && s.length) s[r.int(s.length)] = s[r.int(s.length)]! + r.pick([-1, 1, 2]);
    else s.unshift(r.pick([0, 1, 2]));
    e['shape'] = s;
    return h;
  },
  weirdShape: (h, _d, r) => {
    const e = entry(h, r)!;
    const s = [...((e['shape'] as unknown[]) ?? [])];
    s[r.int(s.length + 1)] = r.pick(WEIRD_NUMBERS);
    e['shape'] = r.chance(0.1) ? r.pick(WEIRD_NUMBERS) : s;
    return h;
  },
  hugeShapeWithMatchingBytes: (h, _d, r) => {
    const e = entry(h, r)!;
    e['dtype'] = 'U8';
    const shape = r.pick([[2 ** 26, 2 ** 26], [2 ** 20, 2 ** 20, 2 ** 20], [2 ** 52, 2], [2 ** 26, 2 ** 26, 0], [0, 2 ** 53 - 1]]);
    e['shape'] = shape;
    const bytes = shape.reduce((a, b) => a * b, 1);
    e['data_offsets'] = [0, bytes];
    return h;
  },
  nonObjectEntry: (h, _d, r) => {
    const names = tensorNames(h);
    h[names.length ? r.pick(names) : 'x'] = r.pick([1, 'str', null, [], [1, 2], true, 1e308]);
    return h;
  },
  missingField: (h, _d, r) => {
    const e = entry(h, r)!;
    delete e[r.pick(['dtype', 'shape', 'data_offsets'])];
    return h;
  },
  badMetadata: (h, _d, r) => {
    h['__metadata__'] = r.pick([1, 'x', null, [], ['a'], { a: 1 }, { a: null }, { a: 'b', c: { d: 'e' } }, { a: 'b' }, { __proto__: 'x' } as unknown, {}]);
    return h;
  },
  notAnObject: (_h, _d, r) => r.pick(['[]', '[{"dtype":"F32"}]', '1', '"x"', 'null', 'true', '{}', '{"__metadata__":{}}']),
  hugeNumbers: (h, _d, r) => {
    const e = entry(h, r)!;
    const text = JSON.stringify(h);
    const key = r.pick(['shape', 'data_offsets']);
    const num = r.pick(['1e999', '-1e999', '123456789012345678901234567890', '9007199254740993', '1.0000000000000002', '0.0', '1E2', '-0', '4.0']);
    void e;
    return text.replace(new RegExp(`"${key}":\\[(\\d+)`), `"${key}":[${num}`);
  },
  duplicateKeys: (h, _d, r) => {
    const names = tensorNames(h);
    const text = JSON.stringify(h);
    if (!names.length) return '{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"a":1}';
    const name = r.pick(names);
    const dup = JSON.stringify({ dtype: r.pick(['F32', 'U8', 'BF16']), shape: [r.int(4)], data_offsets: [r.int(8), r.int(16)] });
    return r.chance(0.5) ? `{${JSON.stringify(name)}:${dup},${text.slice(1)}` : `${text.slice(0, -1)},${JSON.stringify(name)}:${dup}}`;
  },
  deepNesting: (h, _d, r) => {
    const depth = r.pick([10, 1000, 5000, 100_000, 400_000]);
    const kind = r.int(3);
    const inner = kind === 0 ? '['.repeat(depth) + ']'.repeat(depth) : kind === 1 ? '{"a":'.repeat(depth) + '1' + '}'.repeat(depth) : '['.repeat(depth);
    const text = JSON.stringify(h);
    const names = tensorNames(h);
    if (kind !== 2 && names.length && r.chance(0.5)) {
      // put the nest inside a tensor entry or the metadata, where it reaches the reader's error formatting
      const name = r.pick(names);
      const field = r.pick(['shape', 'data_offsets', 'dtype', '__metadata__']);
      if (field === '__metadata__') return `${text.slice(0, -1)},"__metadata__":{"k":${inner}}}`;
      const e = h[name] as Record<string, unknown>;
      e[field] = '@@DEEP@@';
      return JSON.stringify(h).replace('"@@DEEP@@"', inner);
    }
    return `${text.slice(0, -1)}${text.length > 2 ? ',' : ''}"deep":${inner}}`;
  },
  nameChaos: (h, _d, r) => {
    const names = tensorNames(h);
    if (!names.length) return h;
    const n = r.pick(names);
    const v = h[n];
    delete h[n];
    h[r.pick(['', '__proto__', 'constructor', 'a\nb', '\u2028', 'x'.repeat(5000), '\ud800', '__metadata__ ', 'toString'])] = v;
    return h;
  },
  zeroSized: (h, d, r) => {
    const e = entry(h, r)!;
    e['shape'] = [0, r.int(4)];
    const at = r.pick([0, d, d + 1, Math.floor(d / 2)]);
    e['data_offsets'] = [at, at + r.pick([0, 0, 1])];
    return h;
  },
};

/** Whether a file's header parses into the shape the JSON mutators expect (earlier mutations may have broken it). */
function wellFormed(file: Uint8Array): boolean {
  let h: unknown;
  try {
    h = split(file).header;
  } catch {
    return false;
  }
  if (typeof h !== 'object' || h === null || Array.isArray(h)) return false;
  try {
    JSON.stringify(h); // too deeply nested to re-serialise (an earlier deepNesting step)
  } catch {
    return false;
  }
  return tensorNames(h as Record<string, unknown>).every((k) => {
    const e = (h as Record<string, unknown>)[k] as Record<string, unknown>;
    return typeof e === 'object' && e !== null && Array.isArray(e['shape']) && Array.isArray(e['data_offsets']) && e['data_offsets'].length === 2 &&
      e['data_offsets'].every((x) => typeof x === 'number');
  });
}

function applyJson(file: Uint8Array, m: JsonMutator, r: Rng): Uint8Array {
  const { header, data } = split(file);
  const out = m(header, data.length, r);
  let text = typeof out === 'string' ? out : JSON.stringify(out);
  if (r.chance(0.5)) text += ' '.repeat((8 - (new TextEncoder().encode(text).length % 8)) % 8);
  let d = data;
  if (r.chance(0.15)) d = data.subarray(0, r.int(data.length + 1));
  return assemble(text, d);
}

// ---- the test -------------------------------------------------------------------------------------------

test('fuzz: mutated safetensors files either open cleanly or fail with a SafetensorsError', () => {
  const r = new Rng(0x5afe7e5);
  const seeds = seedFiles(r);
  for (const s of seeds) assert.equal(check(s, 'seed').opened, true, 'seed files are valid');

  const stats = new Map<string, { ok: number; rejected: number }>();
  const errors = new Map<string, number>();
  const record = (kind: string, o: Outcome): void => {
    const st = stats.get(kind) ?? { ok: 0, rejected: 0 };
    if (o.opened) st.ok++;
    else {
      st.rejected++;
      errors.set(o.error!, (errors.get(o.error!) ?? 0) + 1);
    }
    stats.set(kind, st);
  };
  const ITER = 4000;
  const t0 = Date.now();
  const byteKinds = Object.keys(byteMutators);
  const jsonKinds = Object.keys(jsonMutators);
  for (let i = 0; i < ITER; i++) {
    let file = r.pick(seeds);
    const kinds: string[] = [];
    const steps = r.chance(0.8) ? 1 : 2 + r.int(2);
    for (let s = 0; s < steps; s++) {
      // JSON mutations need a header that still parses; fall back to a byte mutation when it does not
      const canJson = wellFormed(file);
      if (canJson && r.chance(0.55)) {
        const k = r.pick(jsonKinds);
        kinds.push(k);
        file = applyJson(file, jsonMutators[k]!, r);
      } else {
        const k = r.pick(byteKinds);
        kinds.push(k);
        file = byteMutators[k]!(file, r);
      }
    }
    const what = `#${i} (${kinds.join(' + ')})`;
    record(kinds.length === 1 ? kinds[0]! : 'combined', check(file, what));
  }
  const ms = Date.now() - t0;

  // the fuzzer must exercise both outcomes and many distinct rejection reasons
  let ok = 0;
  let rejected = 0;
  for (const st of stats.values()) {
    ok += st.ok;
    rejected += st.rejected;
  }
  assert.equal(ok + rejected, ITER);
  assert.ok(ok > ITER * 0.03, `only ${ok} mutated files opened`);
  assert.ok(rejected > ITER * 0.5, `only ${rejected} mutated files were rejected`);
  for (const k of [...byteKinds, ...jsonKinds]) assert.ok(stats.has(k), `mutator ${k} never ran alone`);
  const missed = REASONS.filter((k) => !errors.has(k));
  assert.deepEqual(missed, [], 'every validation rule should be hit by some mutated file');
  // (no assertion on the time taken: the project's tests never assert on wall time; FUZZ_VERBOSE prints it)
  if (process.env['FUZZ_VERBOSE']) {
    console.log(ms, 'ms', Object.fromEntries(stats));
    console.log(Object.fromEntries([...errors].sort((a, b) => b[1] - a[1])));
  }
});

test('the spy source itself flags reads outside the file', () => {
  const spy = new SpySource(new BufferSource(new Uint8Array(16), 'spy'));
  assert.equal(spy.read(0, 16).length, 16);
  assert.throws(() => spy.read(15, 2));
  assert.throws(() => spy.read(-1, 1));
  assert.throws(() => spy.read(16, 0));
  spy.limit = 8;
  assert.throws(() => spy.read(4, 8));
  assert.equal(spy.violations.length, 4);
});

test('fuzz: random garbage of every small length is rejected cleanly', () => {
  const r = new Rng(42);
  for (let len = 0; len < 64; len++) {
    for (let k = 0; k < 20; k++) {
      const g = bytesOf(r, len);
      if (len >= 8 && k % 2) new DataView(g.buffer).setBigUint64(0, BigInt(r.int(len)), true); // plausible length prefix
      check(g, `garbage len ${len}`);
    }
  }
});
