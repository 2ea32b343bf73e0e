/**
 * safetensors reader/writer: round trips for every dtype, empty tensors, metadata, header alignment, one test
 * per header validation rule, and a real Hugging Face fixture checked against its header parsed here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsFile, encodeSafetensors, MAX_HEADER_BYTES, type TensorToWrite } from '../../src/io/safetensors.js';
import { BufferSource } from '../../src/io/byte-source.js';
import { FileSource } from '../../src/io/file-source.js';
import { SafetensorsError, UserError } from '../../src/util/errors.js';
import { FIXTURES } from '../helpers/fixtures.js';

// ---- helpers --------------------------------------------------------------------------------------------

const LABEL = 'test.safetensors';

/** A raw file: u64 LE length (the real one unless overridden), header bytes, data bytes. */
function raw(header: string | Uint8Array, data: Uint8Array | number = 0, len?: bigint): Uint8Array {
  const h = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, len ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

/** A file whose header is `obj` serialised as JSON, followed by `data` bytes. */
function rawJson(obj: unknown, data: Uint8Array | number = 0): Uint8Array {
  return raw(JSON.stringify(obj), data);
}

function open(bytes: Uint8Array, label = LABEL): SafetensorsFile {
  return new SafetensorsFile(new BufferSource(bytes, label));
}

/** Asserts opening fails with a one-line SafetensorsError naming the file and matching `re`. */
function rejects(bytes: Uint8Array, re: RegExp): SafetensorsError {
  let err: unknown;
  try {
    open(bytes);
  } catch (e) {
    err = e;
  }
  assert.ok(err !== undefined, `expected the file to be rejected (${re})`);
  assert.ok(err instanceof SafetensorsError, `expected a SafetensorsError, got ${String(err)}`);
  assert.ok(err instanceof UserError, 'SafetensorsError is a UserError');
  assert.ok(err.message.startsWith(`${LABEL}: `), `message should name the file: ${err.message}`);
  assert.ok(!/[\n\r]/.test(err.message), `message should be one line: ${JSON.stringify(err.message)}`);
  assert.match(err.message, re);
  return err;
}

function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    out[i] = s & 0xff;
  }
  return out;
}

const T = (dtype: string, shape: number[], b: number, e: number) => ({ dtype, shape, data_offsets: [b, e] });

// ---- round trips ----------------------------------------------------------------------------------------

const DTYPE_SIZES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, U16: 2, U32: 4, U64: 8, F8_E4M3: 1, F8_E5M2: 1,
};

test('round trip: every supported dtype, bytes identical', () => {
  const tensors: Record<string, TensorToWrite> = {};
  let seed = 1;
  for (const [dtype, size] of Object.entries(DTYPE_SIZES)) {
    const shape = [3, 5];
    tensors[`t.${dtype}`] = { dtype, shape, data: randomBytes(15 * size, seed++) };
    tensors[`scalar.${dtype}`] = { dtype, shape: [], data: randomBytes(size, seed++) };
  }
  const f = open(encodeSafetensors(tensors));
  assert.equal(f.tensors.size, Object.keys(tensors).length);
  for (const [name, t] of Object.entries(tensors)) {
    const info = f.info(name);
    assert.equal(info.dtype, t.dtype);
    assert.deepEqual(info.shape, t.shape);
    assert.equal(info.byteLength, t.data.byteLength);
    assert.deepEqual(f.bytes(name), t.data, name);
    const dst = new Uint8Array(info.byteLength);
    f.readInto(name, dst);
    assert.deepEqual(dst, t.data);
  }
});

test('round trip: typed-array values (F32 incl. NaN payload/-0/inf, F16/BF16 bits, I64, I32, U8, BOOL)', () => {
  const f32 = Float32Array.of(1, -0, Infinity, -Infinity, 1e-45, 3.4028234663852886e38, 0.1);
  const nanBits = new Uint32Array(1).fill(0x7fa01234);
  const f32nan = new Float32Array(nanBits.buffer);
  const f16 = Uint16Array.of(0x3c00, 0x8000, 0x7c00, 0x0001);
  const bf16 = Uint16Array.of(0x3f80, 0xbf80, 0x7f80, 0x0001);
  const i64 = BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n, 0n, -1n);
  const i32 = Int32Array.of(-2147483648, 2147483647, 0, -1, 7, 8);
  const u8 = Uint8Array.of(0, 255, 128);
  const bool = Uint8Array.of(1, 0, 1, 1);
  // a view with a non-zero byteOffset must be written from its own bytes only
  const backing = new Float64Array([9, 1.5, -2.25, 9]);
  const f64view = backing.subarray(1, 3);
  const f = open(encodeSafetensors({
    f32: { dtype: 'F32', shape: [7], data: f32 },
    f32nan: { dtype: 'F32', shape: [1], data: f32nan },
    f16: { dtype: 'F16', shape: [2, 2], data: f16 },
    bf16: { dtype: 'BF16', shape: [4], data: bf16 },
    i64: { dtype: 'I64', shape: [2, 2], data: i64 },
    i32: { dtype: 'I32', shape: [2, 3], data: i32 },
    u8: { dtype: 'U8', shape: [3], data: u8 },
    bool: { dtype: 'BOOL', shape: [4], data: bool },
    f64: { dtype: 'F64', shape: [2], data: f64view },
  }));
  const b = (n: string) => f.bytes(n);
  const v32 = new Float32Array(b('f32').buffer, 0, 7);
  assert.ok(Object.is(v32[1], -0));
  assert.deepEqual([...v32], [...f32]);
  assert.equal(new Uint32Array(b('f32nan').buffer, 0, 1)[0], 0x7fa01234);
  assert.deepEqual([...new Uint16Array(b('f16').buffer, 0, 4)], [...f16]);
  assert.deepEqual([...new Uint16Array(b('bf16').buffer, 0, 4)], [...bf16]);
  assert.deepEqual([...new BigInt64Array(b('i64').buffer, 0, 4)], [...i64]);
  assert.deepEqual([...new Int32Array(b('i32').buffer, 0, 6)], [...i32]);
  assert.deepEqual([...b('u8')], [...u8]);
  assert.deepEqual([...b('bool')], [...bool]);
  assert.deepEqual([...new Float64Array(b('f64').buffer, 0, 2)], [1.5, -2.25]);
});

test('bytes() returns a fresh, 8-byte aligned copy (typed-array views work at any element size)', () => {
  const src = encodeSafetensors({ a: { dtype: 'U8', shape: [3], data: Uint8Array.of(1, 2, 3) }, b: { dtype: 'F64', shape: [1], data: Float64Array.of(2.5) } });
  const f = open(src);
  const bb = f.bytes('b');
  assert.equal(bb.byteOffset % 8, 0);
  assert.equal(new Float64Array(bb.buffer, bb.byteOffset, 1)[0], 2.5);
  const a1 = f.bytes('a');
  a1[0] = 99;
  assert.deepEqual([...f.bytes('a')], [1, 2, 3], 'mutating a returned copy must not change the source');
});

test('empty tensors (a zero dimension) and a file with no tensors', () => {
  const f = open(encodeSafetensors({
    before: { dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) },
    e0: { dtype: 'F32', shape: [0], data: new Float32Array(0) },
    e1: { dtype: 'BF16', shape: [4, 0, 3], data: new Uint16Array(0) },
    e2: { dtype: 'I64', shape: [0, 0], data: new BigInt64Array(0) },
    after: { dtype: 'U8', shape: [1], data: Uint8Array.of(7) },
    last: { dtype: 'F16', shape: [0], data: new Uint16Array(0) }, // offsets [end, end]: at the very end of the file
  }));
  for (const [n, shape] of [['e0', [0]], ['e1', [4, 0, 3]], ['e2', [0, 0]], ['last', [0]]] as const) {
    assert.deepEqual(f.info(n).shape, shape);
    assert.equal(f.info(n).byteLength, 0);
    assert.equal(f.bytes(n).length, 0);
    f.readInto(n, new Uint8Array(0));
  }
  assert.deepEqual([...new Float32Array(f.bytes('before').buffer, 0, 2)], [1, 2]);
  assert.deepEqual([...f.bytes('after')], [7]);
  const empty = open(encodeSafetensors({}));
  assert.equal(empty.tensors.size, 0);
  assert.deepEqual(empty.metadata, {});
  // hand-written: zero-length tensors may share an offset with each other and with a real tensor's boundary
  const g = open(rawJson({ a: T('F32', [0], 8, 8), b: T('F32', [0], 8, 8), z: T('F32', [0], 0, 0), c: T('F32', [2], 0, 8) }, 8));
  assert.equal(g.tensors.size, 4);
  // but not inside another tensor's bytes (the reference implementation rejects that too)
  rejects(rawJson({ a: T('F32', [0], 4, 4), c: T('F32', [2], 0, 8) }, 8), /tensors c \[0, 8\) and a \[4, 4\) overlap/);
});

test('metadata round trip (string → string, unicode, empty), absent metadata is {}', () => {
  const md = { format: 'pt', note: 'héllo 🌍 "quoted"\nnewline', empty: '' };
  const f = open(encodeSafetensors({ x: { dtype: 'U8', shape: [1], data: Uint8Array.of(1) } }, md));
  assert.deepEqual({ ...f.metadata }, md);
  assert.equal(f.tensors.has('__metadata__'), false);
  const g = open(encodeSafetensors({ x: { dtype: 'U8', shape: [1], data: Uint8Array.of(1) } }));
  assert.deepEqual({ ...g.metadata }, {});
  // a "__proto__" key is plain data, not a prototype change
  const h = open(raw('{"__metadata__":{"__proto__":"x","a":"b"}}'));
  assert.equal(Object.getOwnPropertyDescriptor(h.metadata, '__proto__')?.value, 'x');
  assert.equal(h.metadata['a'], 'b');
});

test('header is padded with spaces to a multiple of 8 bytes, so the data section is 8-byte aligned', () => {
  for (let len = 0; len < 24; len++) {
    const name = 'n'.repeat(len + 1);
    const bytes = encodeSafetensors({ [name]: { dtype: 'F64', shape: [1], data: Float64Array.of(len) } }, len % 3 ? { k: 'v'.repeat(len) } : undefined);
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal(n % 8, 0, `header length ${n}`);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    assert.match(text, /^\{.*\} *$/s);
    assert.ok(text.length - text.trimEnd().length < 8, 'at most 7 padding spaces');
    const f = open(bytes);
    assert.equal(f.info(name).offset, 8 + n);
    assert.equal(f.info(name).offset % 8, 0);
    assert.equal(new Float64Array(f.bytes(name).buffer, 0, 1)[0], len);
  }
});

test('tensor names with odd characters and non-ASCII survive', () => {
  const names = ['a.b.c', 'ünïcødé.权重', 'with space', 'quote"and\\backslash', '0', '10', '2', ''];
  const tensors: Record<string, TensorToWrite> = {};
  names.forEach((n, i) => (tensors[n] = { dtype: 'U8', shape: [1], data: Uint8Array.of(i) }));
  const f = open(encodeSafetensors(tensors));
  names.forEach((n, i) => assert.deepEqual([...f.bytes(n)], [i], n));
});

test('writer rejects bad input with SafetensorsErrors', () => {
  const d = Uint8Array.of(1, 2, 3, 4);
  assert.throws(() => encodeSafetensors({ x: { dtype: 'F128', shape: [1], data: d } }), (e: unknown) => e instanceof SafetensorsError && /unknown dtype/.test(e.message));
  assert.throws(() => encodeSafetensors({ x: { dtype: 'toString', shape: [1], data: d } }), (e: unknown) => e instanceof SafetensorsError && /unknown dtype/.test(e.message));
  assert.throws(() => encodeSafetensors({ x: { dtype: 'F32', shape: [2], data: d } }), (e: unknown) => e instanceof SafetensorsError && /needs 8 bytes, data has 4/.test(e.message));
  assert.throws(() => encodeSafetensors({ x: { dtype: 'F32', shape: [-1, -1], data: d } }), (e: unknown) => e instanceof SafetensorsError && /invalid shape/.test(e.message));
  assert.throws(() => encodeSafetensors({ x: { dtype: 'U8', shape: [0.5, 8], data: d } }), (e: unknown) => e instanceof SafetensorsError && /invalid shape/.test(e.message));
  assert.throws(() => encodeSafetensors({ __metadata__: { dtype: 'U8', shape: [4], data: d } }), SafetensorsError);
  assert.throws(() => encodeSafetensors({}, { k: 5 as unknown as string }), SafetensorsError);
});

test('info/readInto on the reader: unknown names and wrong destination sizes are SafetensorsErrors', () => {
  const f = open(encodeSafetensors({ x: { dtype: 'F32', shape: [2], data: new Float32Array(2) } }));
  assert.throws(() => f.info('nope'), (e: unknown) => e instanceof SafetensorsError && /no tensor named nope/.test(e.message));
  assert.throws(() => f.bytes('nope'), SafetensorsError);
  assert.throws(() => f.readInto('x', new Uint8Array(7)), (e: unknown) => e instanceof SafetensorsError && /x has 8 bytes, destination 7/.test(e.message));
});

// ---- validation: one test per rule ----------------------------------------------------------------------

test('rule: file shorter than the 8-byte length prefix', () => {
  rejects(new Uint8Array(0), /0 bytes, too short/);
  rejects(new Uint8Array(7), /7 bytes, too short/);
});

test('rule: header length bounded by MAX_HEADER_BYTES (100 MiB), incl. the high 32 bits', () => {
  assert.equal(MAX_HEADER_BYTES, 100 * 1024 * 1024);
  rejects(raw('{}', 0, BigInt(MAX_HEADER_BYTES + 1)), /header length 104857601 exceeds the 104857600-byte limit/);
  rejects(raw('{}', 0, 2n ** 32n + 2n), /header length 4294967298 exceeds/);
  rejects(raw('{}', 0, 2n ** 64n - 1n), /header length 18446744073709551615 exceeds/);
});

test('rule: header length at most file size − 8', () => {
  rejects(raw('{}', 0, 3n), /header length 3 runs past the end of the file \(10 bytes\)/);
  rejects(raw('{}', 0, 1000n), /header length 1000 runs past the end/);
  // a whole file cut inside its header
  const good = encodeSafetensors({ x: { dtype: 'F32', shape: [4], data: new Float32Array(4) } });
  rejects(good.subarray(0, 20), /runs past the end of the file \(20 bytes\): truncated/);
});

test('rule: header length too small to hold a JSON object', () => {
  rejects(raw(''), /header length 0 is too small/);
  rejects(raw('{'), /header length 1 is too small/);
});

test('rule: header must be valid UTF-8', () => {
  rejects(raw(Uint8Array.of(0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d)), /not valid UTF-8/); // {"\xff":1}
  rejects(raw(Uint8Array.of(0x7b, 0x22, 0xc0, 0x80, 0x22, 0x3a, 0x31, 0x7d)), /not valid UTF-8/); // overlong NUL
  rejects(raw(Uint8Array.of(0x7b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x3a, 0x31, 0x7d)), /not valid UTF-8/); // encoded surrogate
  rejects(raw(Uint8Array.of(0x7b, 0x22, 0xe2, 0x82, 0x22, 0x3a, 0x31, 0x7d)), /not valid UTF-8/); // truncated sequence
});

test('rule: header must be valid JSON (message stays on one line even when the input has newlines)', () => {
  rejects(raw('{"a": '), /not valid JSON/);
  rejects(raw('{"a":\n\n x}\n'), /not valid JSON/);
  rejects(raw('{"a":1,}'), /not valid JSON/);
  rejects(raw('{} {}'), /not valid JSON/);
  rejects(raw('{}\0\0\0\0\0\0'), /not valid JSON/); // NUL padding is not whitespace
  rejects(raw('\uFEFF{}'), /not valid JSON/); // a byte-order mark is not silently skipped
  rejects(raw('['.repeat(200_000) + ']'.repeat(200_000)), /not valid JSON|not a JSON object/);
});

test('rule: header must be a JSON object', () => {
  for (const h of ['[]', '[{}]', '42', '"str"', 'null', 'true']) rejects(raw(h), /header is not a JSON object/);
});

test('rule: every entry is an object', () => {
  for (const v of ['1', '"x"', 'null', '[]', '[1,2]']) rejects(raw(`{"w":${v}}`), /entry w is not an object/);
});

test('rule: dtypes must be known (exact spelling, no prototype names)', () => {
  for (const d of ['F128', 'f32', 'float32', '', 'toString', '__proto__', 'constructor', 'hasOwnProperty']) {
    rejects(rawJson({ w: T(d, [1], 0, 4) }, 4), new RegExp(`tensor w has unknown dtype "${d}"`));
  }
  rejects(rawJson({ w: { shape: [1], data_offsets: [0, 4] } }, 4), /tensor w has unknown dtype undefined/);
  rejects(rawJson({ w: T(4 as unknown as string, [1], 0, 4) }, 4), /unknown dtype 4/);
});

test('rule: shapes are arrays of non-negative safe integers', () => {
  const bad: unknown[] = [[-1], [2.5], ['2'], [null], [[2]], 2 ** 53, '2', null, undefined, {}, [2 ** 53], [1e300], [true]];
  for (const s of bad) rejects(rawJson({ w: { dtype: 'U8', shape: s, data_offsets: [0, 2] } }, 2), /tensor w has an invalid shape/);
  rejects(raw('{"w":{"dtype":"U8","shape":[1e999],"data_offsets":[0,2]}}', 2), /invalid shape/);
});

test('rule: too many elements (product overflows the safe-integer range)', () => {
  rejects(rawJson({ w: T('U8', [2 ** 30, 2 ** 30, 2 ** 30], 0, 8) }, 8), /tensor w has too many elements/);
});

test('rule: data_offsets are [begin, end], non-negative safe integers', () => {
  const bad: unknown[] = [[0], [0, 4, 8], [-4, 0], [0, -4], [0.5, 4.5], ['0', '4'], [0, 2 ** 53], null, {}, '0,4', [0, null], [0, 1e300]];
  for (const o of bad) rejects(rawJson({ w: { dtype: 'F32', shape: [1], data_offsets: o } }, 4), /tensor w has invalid data_offsets/);
  rejects(raw('{"w":{"dtype":"F32","shape":[1]}}', 4), /invalid data_offsets undefined/);
});

test('rule: data_offsets end before begin', () => {
  rejects(rawJson({ w: T('F32', [0], 8, 4) }, 8), /tensor w has data_offsets \[8, 4\] with end before begin/);
});

test('rule: end − begin must equal numel × dtype size', () => {
  rejects(rawJson({ w: T('F32', [2, 3], 0, 20) }, 24), /tensor w F32\[2, 3\] needs 24 bytes but data_offsets \[0, 20\] span 20/);
  rejects(rawJson({ w: T('BF16', [4], 0, 16) }, 16), /needs 8 bytes but data_offsets \[0, 16\] span 16/);
  rejects(rawJson({ w: T('U8', [], 0, 0) }, 0), /U8\[\] needs 1 bytes/); // a scalar has one element
  rejects(rawJson({ w: T('I64', [0], 0, 8) }, 8), /needs 0 bytes/);
});

test('rule: tensors must lie inside the data section', () => {
  rejects(rawJson({ w: T('F32', [2], 0, 8) }, 7), /tensor w data_offsets \[0, 8\] run past the 7-byte data section/);
  rejects(rawJson({ w: T('F32', [1], 100, 104) }, 8), /run past the 8-byte data section/);
  rejects(rawJson({ w: T('U8', [0], 9, 9) }, 8), /run past/); // even an empty tensor must point inside
  const good = encodeSafetensors({ a: { dtype: 'F32', shape: [4], data: new Float32Array(4) } });
  rejects(good.subarray(0, good.length - 1), /run past the 15-byte data section: truncated/);
});

test('rule: no two tensors overlap', () => {
  const e = rejects(rawJson({ a: T('F32', [2], 0, 8), b: T('F32', [2], 4, 12) }, 12), /tensors a \[0, 8\) and b \[4, 12\) overlap/);
  assert.ok(e.message.includes(' a ') && e.message.includes(' b '));
  rejects(rawJson({ a: T('F32', [1], 4, 8), b: T('F32', [1], 4, 8) }, 8), /overlap/); // identical ranges
  rejects(rawJson({ big: T('U8', [16], 0, 16), small: T('U8', [2], 6, 8) }, 16), /tensors big .* and small .* overlap/); // nested
  rejects(rawJson({ z: T('U8', [1], 7, 8), a: T('U8', [8], 0, 8) }, 8), /tensors a .* and z .* overlap/); // order in header irrelevant
  // touching is fine (gaps are not: test/reliability/safetensors-coverage.test.ts)
  const ok = open(rawJson({ a: T('U8', [4], 0, 4), b: T('U8', [4], 4, 8), c: T('U8', [1], 8, 9) }, 9));
  assert.equal(ok.tensors.size, 3);
});

test('rule: __metadata__ is a string → string map', () => {
  for (const m of ['1', '"x"', 'null', '[]', '["a"]']) rejects(raw(`{"__metadata__":${m}}`), /__metadata__ is not an object of strings/);
  for (const v of ['1', 'null', 'true', '{}', '["x"]']) rejects(raw(`{"__metadata__":{"ok":"s","bad":${v}}}`), /__metadata__ entry bad is not a string/);
});

test('hostile tensor names cannot break the one-line message', () => {
  const e = rejects(rawJson({ 'evil\nname\r\u2028x': T('F128', [1], 0, 4) }, 4), /unknown dtype/);
  assert.ok(e.message.includes('evil\\nname'), e.message);
  const long = 'x'.repeat(100_000);
  const e2 = rejects(rawJson({ [long]: T('F128', [1], 0, 4) }, 4), /unknown dtype/);
  assert.ok(e2.message.length < 1000, `message length ${e2.message.length}`);
});

test('deeply nested values anywhere in the header are SafetensorsErrors, not stack overflows', () => {
  const deep = '['.repeat(100_000) + ']'.repeat(100_000);
  const deepObj = '{"a":'.repeat(50_000) + '1' + '}'.repeat(50_000);
  rejects(raw(`{"w":{"dtype":"F32","shape":${deep},"data_offsets":[0,4]}}`, 4), /tensor w has an invalid shape a deeply nested array/);
  rejects(raw(`{"w":{"dtype":"F32","shape":[1],"data_offsets":${deep}}}`, 4), /tensor w has invalid data_offsets a deeply nested array/);
  rejects(raw(`{"w":{"dtype":${deep},"shape":[1],"data_offsets":[0,4]}}`, 4), /tensor w has unknown dtype a deeply nested array/);
  rejects(raw(`{"w":{"dtype":${deepObj},"shape":[1],"data_offsets":[0,4]}}`, 4), /unknown dtype a deeply nested object/);
  rejects(raw(`{"w":${deep}}`, 4), /entry w is not an object \(got a deeply nested array\)/);
  rejects(raw(`{"__metadata__":{"k":${deepObj}}}`), /__metadata__ entry k is not a string \(got a deeply nested object\)/);
  rejects(raw(`{"__metadata__":${deep}}`), /__metadata__ is not an object of strings/);
});

test('duplicate keys: the last entry wins and the result is still validated', () => {
  const f = open(raw('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}', 2));
  assert.equal(f.info('w').dtype, 'U8');
  rejects(raw('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"U8","shape":[2],"data_offsets":[7,9]}}', 8), /run past/);
});

test('extra header whitespace and unknown per-tensor fields are accepted', () => {
  const f = open(raw('  \n{ "w" : { "dtype":"U8", "shape":[2], "data_offsets":[0,2], "extra": {"x":[1]} } }\t  ', Uint8Array.of(5, 6)));
  assert.deepEqual([...f.bytes('w')], [5, 6]);
});

// ---- FileSource -----------------------------------------------------------------------------------------

test('FileSource: reads an encoded file lazily from disk; missing files and folders are UserErrors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-st-'));
  try {
    const p = join(dir, 'a.safetensors');
    writeFileSync(p, encodeSafetensors({ x: { dtype: 'F32', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) } }, { k: 'v' }));
    const f = new SafetensorsFile(new FileSource(p));
    assert.equal(f.label, p);
    assert.deepEqual([...new Float32Array(f.bytes('x').buffer, 0, 4)], [1, 2, 3, 4]);
    assert.equal(f.metadata['k'], 'v');
    f.close();
    f.close(); // idempotent
    assert.throws(() => new FileSource(join(dir, 'missing.safetensors')), (e: unknown) => e instanceof UserError && /cannot open .*missing\.safetensors: ENOENT/.test(e.message));
    mkdirSync(join(dir, 'd.safetensors'));
    assert.throws(() => new FileSource(join(dir, 'd.safetensors')), (e: unknown) => e instanceof UserError && /not a regular file/.test(e.message));
    writeFileSync(join(dir, 'bad.safetensors'), raw('{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', 8));
    const src = new FileSource(join(dir, 'bad.safetensors'));
    assert.throws(() => new SafetensorsFile(src), (e: unknown) => e instanceof SafetensorsError && e.message.startsWith(`${join(dir, 'bad.safetensors')}: tensor w`));
    src.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- a real checkpoint ----------------------------------------------------------------------------------

test('reads the HF mixtral fixture; header fields agree with the JSON parsed independently here', () => {
  const path = join(FIXTURES, 'mixtral', 'model.safetensors');
  const file = readFileSync(path);
  const n = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  assert.ok(names.length > 10);
  const f = new SafetensorsFile(new FileSource(path));
  try {
    assert.equal(f.tensors.size, names.length);
    assert.deepEqual({ ...f.metadata }, header['__metadata__'] ?? {});
    const sizes: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8 };
    for (const name of names) {
      const h = header[name] as { dtype: string; shape: number[]; data_offsets: [number, number] };
      const info = f.info(name);
      assert.equal(info.dtype, h.dtype, name);
      assert.deepEqual(info.shape, h.shape, name);
      assert.equal(info.byteLength, h.data_offsets[1] - h.data_offsets[0], name);
      assert.equal(info.byteLength, h.shape.reduce((a, b) => a * b, 1) * sizes[h.dtype]!, name);
      assert.equal(info.offset, 8 + n + h.data_offsets[0], name);
    }
    // a few tensors byte-for-byte against the file
    for (const name of ['lm_head.weight', 'model.embed_tokens.weight', names[names.length - 1]!]) {
      const h = header[name] as { data_offsets: [number, number] };
      assert.ok(Buffer.from(f.bytes(name)).equals(file.subarray(8 + n + h.data_offsets[0], 8 + n + h.data_offsets[1])), name);
    }
    const lm = header['lm_head.weight'] as { dtype: string; shape: number[] };
    assert.equal(lm.dtype, 'F32');
    assert.equal(lm.shape.length, 2);
  } finally {
    f.close();
  }
});
