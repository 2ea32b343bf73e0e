/**
 * safetensors reader and writer.
 *
 * Format: u64 little-endian header length N, N bytes of JSON `{name: {dtype, shape, data_offsets:[b,e]}, __metadata__?}`,
 * then the data section; offsets are relative to the data section. The reader validates everything before
 * any tensor is read: header length bounds, JSON, known dtypes, integral shapes, byte counts matching the shape,
 * offsets inside the file, and no two tensors overlapping. Tensors are read lazily, one at a time.
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
    if (!t) throw new SafetensorsError(`${this.label}: no tensor named ${name}`);
    return t;
  }

  /** Raw bytes of one tensor (fresh, 8-byte aligned copy). */
  bytes(name: string): Uint8Array {
    const t = this.info(name);
    const buf = new Uint8Array(new ArrayBuffer(Math.ceil(t.byteLength / 8) * 8), 0, t.byteLength);
    return this.source.read(t.offset, t.byteLength, buf);
  }

  /** Read a tensor into a caller-provided destination (e.g. a view in the WASM heap). */
  readInto(name: string, dst: Uint8Array): void {
    const t = this.info(name);
    if (dst.length !== t.byteLength) throw new SafetensorsError(`${this.label}: ${name} has ${t.byteLength} bytes, destination ${dst.length}`);
    this.source.read(t.offset, t.byteLength, dst);
  }

  close(): void {
    this.source.close();
  }
}

function fail(src: ByteSource, msg: string): never {
  throw new SafetensorsError(`${src.label}: ${msg}`);
}

function parseHeader(src: ByteSource): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  if (src.size < 8) fail(src, `file is ${src.size} bytes, too short for a safetensors header`);
  const lenBytes = src.read(0, 8);
  const dv = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8);
  const hi = dv.getUint32(4, true);
  const lo = dv.getUint32(0, true);
  const n = hi * 2 ** 32 + lo;
  if (hi !== 0 || n > MAX_HEADER_BYTES) fail(src, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (n < 2) fail(src, `header length ${n} is too small`);
  if (8 + n > src.size) fail(src, `header length ${n} runs past the end of the file (${src.size} bytes): truncated?`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(src.read(8, n)));
  } catch (e) {
    fail(src, `header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail(src, 'header is not a JSON object');
  const dataStart = 8 + n;
  const dataSize = src.size - dataStart;
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(src, '__metadata__ is not an object');
      for (const [k, v] of Object.entries(raw)) if (typeof v !== 'string') fail(src, `__metadata__.${k} is not a string`);
      metadata = raw as Record<string, string>;
      continue;
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(src, `entry ${name} is not an object`);
    const e = raw as Record<string, unknown>;
    const dtype = e['dtype'];
    if (typeof dtype !== 'string' || !(dtype in SAFETENSORS_DTYPE_BYTES)) fail(src, `tensor ${name} has unknown dtype ${JSON.stringify(dtype)}`);
    const shape = e['shape'];
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) fail(src, `tensor ${name} has an invalid shape ${JSON.stringify(shape)}`);
    const offs = e['data_offsets'];
    if (!Array.isArray(offs) || offs.length !== 2 || offs.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      fail(src, `tensor ${name} has invalid data_offsets ${JSON.stringify(offs)}`);
    }
    const [b, end] = offs as [number, number];
    if (end < b) fail(src, `tensor ${name} has data_offsets [${b}, ${end}] with end before begin`);
    let count = 1;
    for (const d of shape as number[]) {
      count *= d;
      if (!Number.isSafeInteger(count)) fail(src, `tensor ${name} has too many elements`);
    }
    const bytes = count * SAFETENSORS_DTYPE_BYTES[dtype]!;
    if (end - b !== bytes) fail(src, `tensor ${name} ${dtype}[${(shape as number[]).join(', ')}] needs ${bytes} bytes but data_offsets span ${end - b}`);
    if (end > dataSize) fail(src, `tensor ${name} ends at byte ${end} of a ${dataSize}-byte data section: truncated or lying header`);
    tensors.set(name, { name, dtype, shape: shape as number[], offset: dataStart + b, byteLength: bytes });
  }
  const sorted = [...tensors.values()].filter((t) => t.byteLength > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const p = sorted[i - 1]!;
    const c = sorted[i]!;
    if (c.offset < p.offset + p.byteLength) fail(src, `tensors ${p.name} and ${c.name} overlap`);
  }
  return { tensors, metadata };
}

export interface TensorToWrite {
  dtype: string;
  shape: readonly number[];
  data: ArrayBufferView;
}

/** Serialise tensors (in the given order) to safetensors bytes. Header padded with spaces to 8-byte alignment. */
export function encodeSafetensors(tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header['__metadata__'] = metadata;
  let off = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const bpe = SAFETENSORS_DTYPE_BYTES[t.dtype];
    if (!bpe) throw new SafetensorsError(`cannot write ${name}: unknown dtype ${t.dtype}`);
    const bytes = t.shape.reduce((a, b) => a * b, 1) * bpe;
    if (bytes !== t.data.byteLength) throw new SafetensorsError(`cannot write ${name}: shape needs ${bytes} bytes, data has ${t.data.byteLength}`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + bytes] };
    off += bytes;
  }
  let hjson = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (hjson.length % 8)) % 8;
  if (pad) hjson = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(pad));
  const out = new Uint8Array(8 + hjson.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(hjson.length), true);
  out.set(hjson, 8);
  let p = 8 + hjson.length;
  for (const t of Object.values(tensors)) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), p);
    p += t.data.byteLength;
  }
  return out;
}
