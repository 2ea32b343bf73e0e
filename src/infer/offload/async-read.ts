/**
 * Asynchronous expert reads: one process-wide reader thread (node:worker_threads, read-worker.ts) that reads byte
 * ranges of checkpoint files straight into the shared WASM heap while the main thread computes.
 *
 * The main thread allocates the destination (a heap block) first, then `issue`s the read: a slot of a shared
 * Int32Array is set to 0 (pending) and the request is posted to the worker; the worker reads with readSync into
 * the heap's SharedArrayBuffer and stores 1 (done) or 2 (failed) into the slot, then notifies. `wait` blocks the main
 * thread (Atomics.wait, allowed on Node's main thread) until the slot leaves 0. Destinations must not be freed or
 * reused while their read is pending: the expert cache finishes an expert's reads before it evicts it.
 *
 * Only views into a SharedArrayBuffer can be filled this way (the WASM heap); anything else is read synchronously
 * by the caller.
 */
import { Worker } from 'node:worker_threads';

export interface ReadRequest {
  kind: 'read';
  slot: number;
  /** Identifies the opened file in the worker (closed with a 'close' message). */
  file: number;
  path: string;
  offset: number;
  length: number;
  buffer: SharedArrayBuffer;
  /** Byte offset of the destination in `buffer`. */
  dst: number;
}
export type ReadWorkerMessage = ReadRequest | { kind: 'close'; file: number };

const SLOTS = 4096;
/** A read that has not finished after this long means the reader thread is gone. */
const WAIT_LIMIT_MS = 120_000;

export class ReadWorker {
  private static shared?: ReadWorker;
  private static nextFile = 1;
  private readonly worker: Worker;
  private readonly flags = new Int32Array(new SharedArrayBuffer(SLOTS * 4));
  private readonly free: number[] = [];
  private failed?: string;

  private constructor() {
    for (let i = SLOTS - 1; i >= 0; i--) this.free.push(i);
    this.worker = new Worker(new URL('./read-worker.js', import.meta.url), { workerData: { flags: this.flags.buffer }, name: 'switchyard-expert-reader', execArgv: [] });
    this.worker.unref();
    this.worker.on('error', (e) => { this.failed = e.message; });
  }

  /** The process-wide reader thread (started on first use). */
  static get(): ReadWorker {
    if (!ReadWorker.shared || ReadWorker.shared.failed) ReadWorker.shared = new ReadWorker();
    return ReadWorker.shared;
  }

  static fileId(): number {
    return ReadWorker.nextFile++;
  }

  /** True when `dst` can be filled by the reader thread. */
  static canFill(dst: Uint8Array): boolean {
    return dst.buffer instanceof SharedArrayBuffer;
  }

  /** Queue a read of `dst.length` bytes at `offset` of `path` into `dst`; returns the slot to `wait` on. */
  issue(file: number, path: string, offset: number, dst: Uint8Array): number | undefined {
    const slot = this.free.pop();
    if (slot === undefined) return undefined;
    Atomics.store(this.flags, slot, 0);
    const m: ReadRequest = { kind: 'read', slot, file, path, offset, length: dst.length, buffer: dst.buffer as SharedArrayBuffer, dst: dst.byteOffset };
    this.worker.postMessage(m);
    return slot;
  }

  /** True once the read in `slot` has finished (without blocking). */
  done(slot: number): boolean {
    return Atomics.load(this.flags, slot) !== 0;
  }

  /** Block until the read in `slot` finishes; frees the slot. Returns false when the worker could not read. */
  wait(slot: number): boolean {
    const t0 = Date.now();
    while (Atomics.load(this.flags, slot) === 0) {
      if (Atomics.wait(this.flags, slot, 0, 1000) === 'timed-out' && Date.now() - t0 > WAIT_LIMIT_MS) {
        throw new Error(`expert reader thread did not answer for ${WAIT_LIMIT_MS / 1000} s${this.failed ? ` (${this.failed})` : ''}`);
      }
    }
    const ok = Atomics.load(this.flags, slot) === 1;
    this.free.push(slot);
    return ok;
  }

  /** The worker may close its descriptor of `file` (after every read queued before). */
  closeFile(file: number): void {
    const m: ReadWorkerMessage = { kind: 'close', file };
    this.worker.postMessage(m);
  }
}
