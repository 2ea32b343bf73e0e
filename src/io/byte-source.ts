/** Random-access bytes: a file on disk (Node) or an in-memory buffer (browser, tests). */
export interface ByteSource {
  readonly size: number;
  readonly label: string;
  /** Exactly `length` bytes at `offset`; throws if the range is outside [0, size). */
  read(offset: number, length: number, into?: Uint8Array): Uint8Array;
  close(): void;
}

export class BufferSource implements ByteSource {
  readonly size: number;
  constructor(private readonly buf: Uint8Array, readonly label = '<buffer>') {
    this.size = buf.length;
  }
  read(offset: number, length: number, into?: Uint8Array): Uint8Array {
    checkRange(this, offset, length);
    const view = this.buf.subarray(offset, offset + length);
    if (into) { into.set(view); return into; }
    return view;
  }
  close(): void {}
}

export function checkRange(src: ByteSource, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > src.size) {
    throw new RangeError(`read of ${length} bytes at ${offset} is outside ${src.label} (${src.size} bytes)`);
  }
}
