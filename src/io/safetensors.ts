/**
 * safetensors reader and writer.
 *
 * Format: u64 little-endian header length N, N bytes of JSON `{name: {dtype, shape, data_offsets:[b,e]}, __metadata__?}`,
 * then the data section; offsets are relative to the data section. The reader validates everything before
 * any tensor is read: header length bounds, JSON, known dtypes, integral shapes, byte counts matching the shape,
 * offsets inside the file, and the tensors covering the data section exactly (no overlap, no gap, no trailing bytes). Tensors are read lazily, one at a time.
 */
import { type ByteSource } from './byte-source.js';
import { SAFETENSORS_DTYPE_BYTES } from '../tensor/dtype.js';
import { SafetensorsError } from '../util/errors.js';

export interface TensorInfo {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Absolute byte offset in the file. */
  readonly offset: number;
  readonly byteLength: number;
}

/** Largest header we accept; real checkpoints stay far below this. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/**
 * Make text safe for a one-line error message: control characters (newlines included, e.g. from JSON.parse
 * messages that quote the input, or from hostile tensor names) are escaped and very long text is cut.
 */
export function oneLine(text: string, max = 600): string {
  // eslint-disable-next-line no-control-regex
  const s = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : c === '\t' ? '\\t' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/**
 * A JSON value for an error message, cut short. Never throws: JSON.stringify (and String) recurse, so a
 * deeply nested value from a hostile header would otherwise escape as a RangeError (stack overflow).
 */
function show(v: unknown): string {
  let s: string | undefined;
  try {
    s = JSON.stringify(v);
  } catch {
    s = undefined;
  }
  s ??= v === undefined ? 'undefined' : Array.isArray(v) ? 'a deeply nested array' : typeof v === 'object' && v !== null ? 'a deeply nested object' : typeof v;
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class SafetensorsFile {
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  readonly metadata: Readonly<Record<string, string>>;

  constructor(readonly source: ByteSource) {
    const { tensors, metadata } = parseHeader(source);
    this.tensors = tensors;
    this.metadata = metadata;
  }

  get label(): string {
    return this.source.label;
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new SafetensorsError(oneLine(`${this.label}: no tensor named ${name}`));
    return t;
  }

  /** Raw bytes of one tensor (fresh, 8-byte aligned copy). */
  bytes(name: string): Uint8Array {
    const t = this.info(name);
    const buf = new Uint8Array(new ArrayBuffer(Math.ceil(t.byteLength / 8) * 8), 0, t.byteLength);
    if (t.byteLength === 0) return buf;
    return this.source.read(t.offset, t.byteLength, buf);
  }

  /** Read a tensor into a caller-provided destination (e.g. a view in the WASM heap). */
  readInto(name: string, dst: Uint8Array): void {
    const t = this.info(name);
    if (dst.length !== t.byteLength) throw new SafetensorsError(oneLine(`${this.label}: ${name} has ${t.byteLength} bytes, destination ${dst.length}`));
    if (t.byteLength > 0) this.source.read(t.offset, t.byteLength, dst);
  }

  close(): void {
    this.source.close();
  }
}

function fail(src: ByteSource, msg: string): never {
  throw new SafetensorsError(oneLine(`${src.label}: ${msg}`));
}

/** A tensor name as it appears in messages (quoted only when it has odd characters; long names cut). */
function nm(name: string): string {
  const s = /^[\w.:/\-[\]]+$/.test(name) ? name : JSON.stringify(name);
  return s.length > 120 ? `${s.slice(0, 120)}…` : s;
}

/**
 * The tensors must tile the data section exactly, as the reference implementation (huggingface/safetensors,
 * `Metadata::validate` + the buffer-length check in `SafeTensors::deserialize`) requires: sorted by
 * (begin, end), each begins where the previous one ended, the first at 0, and the last ends at the end of the file.
 * A gap or trailing bytes mean the header and the data disagree (typically a header length off by a few bytes,
 * which would otherwise read every tensor shifted). Empty tensors count too: they must sit on a boundary.
 */
function checkCoverage(src: ByteSource, all: readonly TensorInfo[], dataStart: number, dataSize: number): void {
  const sorted = [...all].sort((a, b) => a.offset - b.offset || a.byteLength - b.byteLength);
  let cursor = 0;
  let prev: TensorInfo | undefined;
  const range = (t: TensorInfo): string => `[${t.offset - dataStart}, ${t.offset - dataStart + t.byteLength})`;
  // Overlaps first (over non-empty tensors), so two tensors sharing bytes are reported as such, not as a gap.
  const nonEmpty = sorted.filter((t) => t.byteLength > 0);
  for (let i = 1; i < nonEmpty.length; i++) {
    const p = nonEmpty[i - 1]!;
    const c = nonEmpty[i]!;
    if (c.offset < p.offset + p.byteLength) fail(src, `tensors ${nm(p.name)} ${range(p)} and ${nm(c.name)} ${range(c)} overlap`);
  }
  for (const t of sorted) {
    const b = t.offset - dataStart;
    if (b < cursor) fail(src, `tensors ${nm(prev!.name)} ${range(prev!)} and ${nm(t.name)} ${range(t)} overlap`);
    if (b > cursor) {
      fail(src, `data section has a gap: bytes [${cursor}, ${b}) (file offsets ${dataStart + cursor}..${dataStart + b - 1}) belong to no tensor, ${prev ? `between ${nm(prev.name)} and ${nm(t.name)}` : `before ${nm(t.name)}`} (header and data disagree)`);
    }
    cursor = b + t.byteLength;
    prev = t;
  }
  if (cursor !== dataSize) {
    fail(src, `${dataSize - cursor} trailing bytes after the last tensor: the tensors end at byte ${cursor} of the ${dataSize}-byte data section (file offset ${dataStart + cursor}; header length wrong or extra data appended)`);
  }
}

function parseHeader(src: ByteSource): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  const size = src.size;
  if (!Number.isSafeInteger(size) || size < 0) fail(src, `source reports an invalid size ${size}`);
  if (size < 8) fail(src, `file is ${size} bytes, too short for a safetensors header`);
  const lenBytes = src.read(0, 8);
  const dv = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8);
  const hi = dv.getUint32(4, true);
  const lo = dv.getUint32(0, true);
  if (hi !== 0 || lo > MAX_HEADER_BYTES) fail(src, `header length ${dv.getBigUint64(0, true)} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const n = lo;
  if (n < 2) fail(src, `header length ${n} is too small`);
  if (n > size - 8) fail(src, `header length ${n} runs past the end of the file (${size} bytes): truncated?`);
  const headerBytes = src.read(8, n); // outside the try: an I/O error must not be reported as bad UTF-8
  let text: string;
  try {
    // ignoreBOM: keep a byte-order mark so JSON.parse rejects it rather than silently skipping it.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    fail(src, 'header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(src, `header is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!isPlainObject(json)) fail(src, `header is not a JSON object`);
  const dataStart = 8 + n;
  const dataSize = size - dataStart;
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isPlainObject(raw)) fail(src, `__metadata__ is not an object of strings (got ${show(raw)})`);
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== 'string') fail(src, `__metadata__ entry ${nm(k)} is not a string (got ${show(v)})`);
      }
      // JSON.parse made this object, so even a "__proto__" key is an ordinary own property.
      metadata = raw as Record<string, string>;
      continue;
    }
    if (!isPlainObject(raw)) fail(src, `entry ${nm(name)} is not an object (got ${show(raw)})`);
    const dtype = raw['dtype'];
    if (typeof dtype !== 'string' || !Object.hasOwn(SAFETENSORS_DTYPE_BYTES, dtype)) fail(src, `tensor ${nm(name)} has unknown dtype ${show(dtype)}`);
    const bpe = SAFETENSORS_DTYPE_BYTES[dtype]!;
    const shapeRaw = raw['shape'];
    if (!Array.isArray(shapeRaw) || shapeRaw.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      fail(src, `tensor ${nm(name)} has an invalid shape ${show(shapeRaw)} (need an array of non-negative integers)`);
    }
    const shape = (shapeRaw as number[]).map((d) => d + 0); // + 0 turns -0 into 0
    const offs = raw['data_offsets'];
    if (!Array.isArray(offs) || offs.length !== 2 || offs.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      fail(src, `tensor ${nm(name)} has invalid data_offsets ${show(offs)} (need [begin, end], non-negative integers)`);
    }
    const b = (offs[0] as number) + 0;
    const end = (offs[1] as number) + 0;
    if (end < b) fail(src, `tensor ${nm(name)} has data_offsets [${b}, ${end}] with end before begin`);
    let count = 1;
    for (const d of shape) {
      count *= d;
      if (!Number.isSafeInteger(count)) fail(src, `tensor ${nm(name)} has too many elements (shape [${shape.join(', ')}])`);
    }
    const bytes = count * bpe;
    if (end - b !== bytes) fail(src, `tensor ${nm(name)} ${dtype}[${shape.join(', ')}] needs ${bytes} bytes but data_offsets [${b}, ${end}] span ${end - b}`);
    if (end > dataSize) fail(src, `tensor ${nm(name)} data_offsets [${b}, ${end}] run past the ${dataSize}-byte data section: truncated or lying header`);
    tensors.set(name, { name, dtype, shape, offset: dataStart + b, byteLength: bytes });
  }
  checkCoverage(src, [...tensors.values()], dataStart, dataSize);
  return { tensors, metadata };
}

export interface TensorToWrite {
  dtype: string;
  shape: readonly number[];
  data: ArrayBufferView;
}

export interface TensorHeaderEntry {
  name: string;
  dtype: string;
  shape: readonly number[];
}

/**
 * The bytes before the data section (u64 length + JSON header padded with spaces to 8-byte alignment) for tensors
 * laid out back to back in the given order, and the size of the data section. Shared by both writers.
 */
export function encodeHeader(entries: readonly TensorHeaderEntry[], metadata?: Record<string, string>): { prefix: Uint8Array; dataBytes: number; sizes: number[] } {
  const header: Record<string, unknown> = {};
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new SafetensorsError(oneLine(`cannot write metadata ${nm(k)}: value is not a string`));
    }
    header['__metadata__'] = metadata;
  }
  let off = 0;
  const sizes: number[] = [];
  for (const { name, dtype, shape } of entries) {
    if (name === '__metadata__') throw new SafetensorsError('cannot write a tensor named __metadata__');
    if (!Object.hasOwn(SAFETENSORS_DTYPE_BYTES, dtype)) throw new SafetensorsError(oneLine(`cannot write ${nm(name)}: unknown dtype ${show(dtype)}`));
    if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new SafetensorsError(oneLine(`cannot write ${nm(name)}: invalid shape ${show(shape)}`));
    const bytes = shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_BYTES[dtype]!;
    header[name] = { dtype, shape: [...shape], data_offsets: [off, off + bytes] };
    sizes.push(bytes);
    off += bytes;
  }
  const json = JSON.stringify(header);
  const pad = (8 - (new TextEncoder().encode(json).length % 8)) % 8;
  const hjson = new TextEncoder().encode(json + ' '.repeat(pad));
  const prefix = new Uint8Array(8 + hjson.length);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(hjson.length), true);
  prefix.set(hjson, 8);
  return { prefix, dataBytes: off, sizes };
}

/** Serialise tensors (in the given order) to safetensors bytes. */
export function encodeSafetensors(tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): Uint8Array {
  const entries = Object.entries(tensors);
  const { prefix, dataBytes, sizes } = encodeHeader(entries.map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape })), metadata);
  entries.forEach(([name, t], i) => {
    if (sizes[i] !== t.data.byteLength) throw new SafetensorsError(oneLine(`cannot write ${nm(name)}: shape needs ${sizes[i]} bytes, data has ${t.data.byteLength}`));
  });
  const out = new Uint8Array(prefix.length + dataBytes);
  out.set(prefix, 0);
  let p = prefix.length;
  for (const [, t] of entries) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), p);
    p += t.data.byteLength;
  }
  return out;
}
