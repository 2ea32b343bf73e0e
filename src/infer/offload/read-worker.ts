/**
 * The expert cache's reader thread (see async-read.ts): it receives positioned-read requests (file, byte offset,
 * length, destination view into the shared WASM heap), performs them with readSync straight into the heap's
 * SharedArrayBuffer, and signals each completion on its slot of a shared Int32Array (Atomics.store + notify:
 * 1 = done, 2 = failed; the main thread then repeats a failed read itself to report the error).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { closeSync, openSync, readSync } from 'node:fs';
import type { ReadRequest, ReadWorkerMessage } from './async-read.js';

function serve(flags: Int32Array): void {
  const fds = new Map<number, number>();
  const read = (m: ReadRequest): void => {
    let fd = fds.get(m.file);
    if (fd === undefined) {
      fd = openSync(m.path, 'r');
      fds.set(m.file, fd);
    }
    const dst = new Uint8Array(m.buffer, m.dst, m.length);
    let done = 0;
    while (done < m.length) {
      const n = readSync(fd, dst, done, Math.min(m.length - done, 1 << 30), m.offset + done);
      if (n <= 0) throw new Error('unexpected end of file');
      done += n;
    }
  };
  parentPort!.on('message', (m: ReadWorkerMessage) => {
    if (m.kind === 'close') {
      const fd = fds.get(m.file);
      fds.delete(m.file);
      if (fd !== undefined) try { closeSync(fd); } catch { /* already gone */ }
      return;
    }
    let state = 1;
    try {
      read(m);
    } catch {
      state = 2;
    }
    Atomics.store(flags, m.slot, state);
    Atomics.notify(flags, m.slot);
  });
}

if (parentPort && workerData) serve(new Int32Array((workerData as { flags: SharedArrayBuffer }).flags));
