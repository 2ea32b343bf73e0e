/**
 * A kernel worker (node:worker_threads). Instantiates the kernels module over the shared memory it is given, then
 * serves jobs from the control block until told to quit (see job.ts for the protocol). It blocks in Atomics.wait
 * while idle, so it costs no CPU; the pool unrefs it so it never keeps the process alive.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { instantiateKernels } from './module.js';
import { QUIT, S_DONE, S_ERR, S_GO, S_READY, runShare, slot, writeMessage } from './job.js';

export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  ctl: SharedArrayBuffer;
  index: number;
  /**
   * Milliseconds to keep polling GO after a job before blocking in Atomics.wait: jobs that follow within this
   * window skip the futex wake-up, which on a virtual machine with an idle vCPU can take hundreds of µs.
   */
  spinMs: number;
}

function serve(init: WorkerInit): void {
  const ctl = new Int32Array(init.ctl);
  const me = init.index;
  const go = slot(me, S_GO);
  const done = slot(me, S_DONE);
  const k = instantiateKernels(init.module, init.memory);
  let seen = Atomics.load(ctl, go);
  if (seen === QUIT) return; // the pool closed before this worker started
  Atomics.store(ctl, slot(me, S_READY), 1);
  Atomics.notify(ctl, slot(me, S_READY));
  parentPort?.postMessage({ ready: me });
  for (;;) {
    let seq = Atomics.load(ctl, go);
    if (seq === seen && init.spinMs > 0) {
      const until = performance.now() + init.spinMs;
      for (let i = 1; seq === seen; i++) {
        seq = Atomics.load(ctl, go);
        if ((i & 255) === 0 && performance.now() > until) break;
      }
    }
    while (seq === seen) {
      Atomics.wait(ctl, go, seen);
      seq = Atomics.load(ctl, go);
    }
    if (seq === QUIT) return;
    seen = seq;
    try {
      runShare(k, ctl, me);
      Atomics.store(ctl, slot(me, S_ERR), 0);
    } catch (e) {
      writeMessage(ctl, me, e instanceof Error ? `${e.name}: ${e.message}` : String(e));
      Atomics.store(ctl, slot(me, S_ERR), 1);
    }
    Atomics.store(ctl, done, seq);
    Atomics.notify(ctl, done);
  }
}

if (parentPort && workerData) serve(workerData as WorkerInit);
