/**
 * The kernel worker pool. `run` is synchronous: it splits a job's output rows between the main thread and the
 * workers that are ready, wakes them through the control block (job.ts), does the main thread's share, then blocks
 * in Atomics.wait (allowed on Node's main thread) until every participant is done.
 *
 * Workers start asynchronously; until one has instantiated its module it takes no share, so the first calls after
 * start-up may run on fewer threads (results are identical either way). `ready()` resolves once all have started.
 * Workers are unref'd: idle, they never keep the process alive. `close()` (also run on process exit) tells them to
 * quit; it returns a promise that settles once they have exited.
 */
import { Worker } from 'node:worker_threads';
import { QUIT, S_DONE, S_ERR, S_GO, S_READY, controlBlock, readMessage, runRows, slot, writeJob, writeRange, type Job } from './job.js';
import type { KernelExports } from './module.js';
import type { WorkerInit } from './worker.js';

/** Rows are split on multiples of this (the kernels' widest row tile). */
const ROW_ALIGN = 4;

export interface PoolOptions {
  /**
   * Milliseconds of polling before sleeping in Atomics.wait: a worker's for its next job, the main thread's for a
   * worker's finish. Default 1.
   */
  spinMs?: number;
}

export class WorkerPool {
  readonly size: number;
  private readonly ctl: Int32Array;
  private readonly workers: Worker[] = [];
  private readonly failed: boolean[];
  private readonly exited: Promise<void>[] = [];
  private readonly started: Promise<void>;
  private seq = 0;
  private closed = false;
  private readonly spinMs: number;
  private readonly onExit = (): void => this.quit();

  constructor(module: WebAssembly.Module, memory: WebAssembly.Memory, workers: number, opts: PoolOptions = {}) {
    this.size = workers;
    this.spinMs = opts.spinMs ?? 1;
    this.ctl = controlBlock(workers);
    this.failed = new Array<boolean>(workers).fill(false);
    const url = new URL('./worker.js', import.meta.url);
    const starts: Promise<void>[] = [];
    for (let i = 0; i < workers; i++) {
      const init: WorkerInit = { module, memory, ctl: this.ctl.buffer as SharedArrayBuffer, index: i, spinMs: this.spinMs };
      // execArgv: [] — the parent's flags (e.g. --input-type, --test) are not meant for the kernel workers.
      const w = new Worker(url, { workerData: init, name: `switchyard-kernels-${i}`, execArgv: [] });
      w.unref();
      starts.push(new Promise<void>((resolve, reject) => {
        w.once('message', () => resolve());
        w.once('error', (e) => { this.failed[i] = true; reject(e); });
        w.once('exit', (code) => { this.failed[i] = true; reject(new Error(`kernel worker ${i} exited (code ${code}) before starting`)); });
      }));
      this.exited.push(new Promise<void>((resolve) => w.once('exit', () => resolve())));
      this.workers.push(w);
    }
    // A worker that fails to start just takes no share: warn once, run on the others.
    this.started = Promise.allSettled(starts).then((rs) => {
      const failed = rs.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed.length && !this.closed) {
        process.emitWarning(`${failed.length} of ${workers} kernel workers failed to start (${String(failed[0]!.reason)}); continuing with fewer threads`, { code: 'SWITCHYARD_WASM_WORKER' });
      }
    });
    process.once('exit', this.onExit);
  }

  /** Resolves once every worker has started or failed to (failures are warned about, not thrown). */
  ready(): Promise<void> {
    return this.started;
  }

  /** Workers that can take a share now. */
  readyWorkers(): number[] {
    const r: number[] = [];
    if (this.closed) return r;
    for (let i = 0; i < this.size; i++) if (!this.failed[i] && Atomics.load(this.ctl, slot(i, S_READY)) === 1) r.push(i);
    return r;
  }

  /**
   * Run `job` over `rows` output rows on the main thread (its kernels `k`) plus up to `maxWorkers` ready workers.
   * Each participant gets one contiguous range of rows (a multiple of 4 rows except the last). Returns the number
   * of threads used.
   */
  run(k: KernelExports, job: Job, rows: number, maxWorkers = this.size): number {
    const avail = this.readyWorkers().slice(0, Math.max(0, maxWorkers));
    const parts = Math.min(avail.length + 1, Math.max(1, Math.floor(rows / ROW_ALIGN)));
    if (parts <= 1) {
      runRows(k, job, 0, rows);
      return 1;
    }
    const bound = (p: number): number => (p >= parts ? rows : Math.min(rows, Math.round((rows * p) / parts / ROW_ALIGN) * ROW_ALIGN));
    this.seq = (this.seq % 0x3fffffff) + 1; // 1..2^30-1: never 0 (initial) nor QUIT
    const seq = this.seq;
    writeJob(this.ctl, job);
    const used = avail.slice(0, parts - 1);
    used.forEach((w, p) => writeRange(this.ctl, w, bound(p + 1), bound(p + 2)));
    for (const w of used) {
      Atomics.store(this.ctl, slot(w, S_GO), seq);
      Atomics.notify(this.ctl, slot(w, S_GO));
    }
    const t0 = performance.now();
    let err: unknown;
    try {
      runRows(k, job, 0, bound(1));
    } catch (e) {
      err = e;
    }
    // Wait for every woken worker even if our own share failed: they are writing into the same output.
    const mine = performance.now() - t0;
    const limitMs = Math.max(60_000, 50 * mine);
    const failures: string[] = [];
    for (const w of used) {
      const at = slot(w, S_DONE);
      // Poll first: the worker usually finishes within microseconds of us, and a futex sleep + wake-up can cost far
      // more than that on a virtual machine whose idle vCPU gets descheduled.
      let d = Atomics.load(this.ctl, at);
      if (d !== seq && this.spinMs > 0) {
        const until = performance.now() + this.spinMs;
        for (let i = 1; d !== seq; i++) {
          d = Atomics.load(this.ctl, at);
          if ((i & 255) === 0 && performance.now() > until) break;
        }
      }
      const start = performance.now();
      while ((d = Atomics.load(this.ctl, at)) !== seq) {
        if (performance.now() - start > limitMs) {
          this.failed[w] = true;
          failures.push(`kernel worker ${w} did not finish within ${Math.round(limitMs)} ms; it is no longer used`);
          break;
        }
        Atomics.wait(this.ctl, at, d, 1000);
      }
      if (d === seq && Atomics.load(this.ctl, slot(w, S_ERR)) !== 0) failures.push(`kernel worker ${w}: ${readMessage(this.ctl, w)}`);
    }
    if (err !== undefined) throw err;
    if (failures.length) throw new Error(failures.join('; '));
    return parts;
  }

  /** Tell the workers to quit (synchronous; safe to call twice). */
  private quit(): void {
    if (this.closed) return;
    this.closed = true;
    process.removeListener('exit', this.onExit);
    for (let i = 0; i < this.size; i++) {
      Atomics.store(this.ctl, slot(i, S_GO), QUIT);
      Atomics.notify(this.ctl, slot(i, S_GO));
    }
  }

  /** Stop the pool; resolves once every worker thread has exited. */
  close(): Promise<void> {
    this.quit();
    // Keep the event loop alive until they are gone (they are unref'd while idle).
    for (const w of this.workers) w.ref();
    return Promise.all(this.exited).then(() => undefined);
  }
}
