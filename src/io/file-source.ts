import { openSync, readSync, fstatSync, closeSync } from 'node:fs';
import { type ByteSource, checkRange } from './byte-source.js';
import { UserError } from '../util/errors.js';

/** A file read lazily with positioned reads: only the tensors asked for are read. */
export class FileSource implements ByteSource {
  readonly size: number;
  private fd: number;
  constructor(readonly label: string) {
    try {
      this.fd = openSync(label, 'r');
    } catch (e) {
      throw new UserError(`cannot open ${label}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    this.size = fstatSync(this.fd).size;
  }
  read(offset: number, length: number, into?: Uint8Array): Uint8Array {
    checkRange(this, offset, length);
    const out = into ?? new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, out, done, Math.min(length - done, 1 << 30), offset + done);
      if (n <= 0) throw new UserError(`${this.label}: unexpected end of file at ${offset + done}`);
      done += n;
    }
    return out;
  }
  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
