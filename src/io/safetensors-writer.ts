/**
 * Streaming safetensors writer for files too large to assemble in memory: the header is computed from the tensor
 * descriptors up front, then each tensor's bytes are produced chunk by chunk. Written to a temp file and renamed,
 * so a crash never leaves a half-written checkpoint under the final name.
 */
import { openSync, writeSync, closeSync, renameSync, rmSync } from 'node:fs';
import { SAFETENSORS_DTYPE_BYTES } from '../tensor/dtype.js';
import { encodeHeader } from './safetensors.js';

export interface StreamedTensor {
  name: string;
  dtype: string;
  shape: readonly number[];
  /** Fill `dst` with the bytes of elements [start, start + dst.length / bytesPerElement). */
  fill(dst: Uint8Array, start: number): void;
}

const CHUNK = 16 << 20;

export function writeSafetensorsStreaming(path: string, tensors: readonly StreamedTensor[], metadata?: Record<string, string>,
  onProgress?: (bytesDone: number, bytesTotal: number) => void): void {
  const { prefix, dataBytes } = encodeHeader(tensors, metadata);
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, prefix);
    const buf = new Uint8Array(CHUNK);
    let done = 0;
    for (const t of tensors) {
      const bpe = SAFETENSORS_DTYPE_BYTES[t.dtype]!;
      const total = t.shape.reduce((a, b) => a * b, 1);
      const perChunk = Math.floor(CHUNK / bpe);
      for (let s = 0; s < total; s += perChunk) {
        const n = Math.min(perChunk, total - s);
        const view = buf.subarray(0, n * bpe);
        t.fill(view, s);
        writeSync(fd, view);
        done += view.length;
        onProgress?.(done, dataBytes);
      }
    }
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try { closeSync(fd); } catch { /* already closed */ }
    rmSync(tmp, { force: true });
    throw e;
  }
}
