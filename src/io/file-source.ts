import { readSync, closeSync } from 'node:fs';
import { type ByteSource, checkRange } from './byte-source.js';
import { UserError } from '../util/errors.js';
import { openRegularFile } from './read-file.js';

function code(e: unknown): string {
  return (e as NodeJS.ErrnoException)?.code ?? (e instanceof Error ? e.message : String(e));
}

/** A file read lazily with positioned reads: only the tensors asked for are read. */
export class FileSource implements ByteSource {
  readonly size: number;
  private fd: number;
  constructor(readonly label: string) {
    // Regular files only: a FIFO would block the first read forever, a device has no size (src/io/read-file.ts).
    const { fd, size } = openRegularFile(label);
    this.size = size;
    this.fd = fd;
  }
  read(offset: number, length: number, into?: Uint8Array): Uint8Array {
    checkRange(this, offset, length);
    if (this.fd < 0) throw new Error(`${this.label} is closed`);
    if (into && into.length < length) throw new RangeError(`destination of ${into.length} bytes is too small for ${length}`);
    const out = into ?? new Uint8Array(length);
    let done = 0;
    while (done < length) {
      let n: number;
      try {
        n = readSync(this.fd, out, done, Math.min(length - done, 1 << 30), offset + done);
      } catch (e) {
        throw new UserError(`${this.label}: read failed at byte ${offset + done}: ${code(e)}`);
      }
      if (n <= 0) throw new UserError(`${this.label}: unexpected end of file at byte ${offset + done} (file shrank?)`);
      done += n;
    }
    return out;
  }
  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
