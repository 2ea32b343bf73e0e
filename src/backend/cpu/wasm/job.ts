/**
 * The shared job protocol between the main thread and the kernel workers: a control block (Int32Array over a
 * SharedArrayBuffer) holding one job descriptor and one slot per worker.
 *
 *   main:   writes the descriptor and each participating worker's row range, then per worker stores
 *           GO = seq and Atomics.notify(GO); runs its own range; then Atomics.wait until DONE === seq for each.
 *   worker: Atomics.wait while GO === last seen; reads descriptor + its range; runs the kernel;
 *           stores DONE = seq (ERR and a message on failure) and Atomics.notify(DONE). GO = QUIT ends it.
 *
 * Workers answer only their own GO word, so a worker that was not ready when a job started never reads a
 * descriptor it was not given. Each slot is padded to its own cache lines (the workers' words never share one).
 */
import type { KernelExports } from './module.js';

export const KERNEL_F32 = 0;
export const KERNEL_BF16 = 1;
export const QUIT = -1;

// Descriptor (words 0..15).
const J_KERNEL = 0;
const J_X = 1;
const J_T = 2;
const J_K = 3;
const J_W = 4;
const J_Y = 5;
const J_LDY = 6;
const HEADER = 16;

// Per-worker slot.
export const S_GO = 0;
export const S_DONE = 1;
export const S_READY = 2;
export const S_ERR = 3;
const S_R0 = 4;
const S_R1 = 5;
const S_MSG = 16;
const MSG_WORDS = 48;
const SLOT = 64;

export interface Job {
  kernel: number;
  x: number;
  T: number;
  K: number;
  w: number;
  y: number;
  ldy: number;
}

export function controlBlock(workers: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer((HEADER + SLOT * workers) * 4));
}

/** Word index of worker i's slot field. */
export const slot = (i: number, field: number): number => HEADER + SLOT * i + field;

export function writeJob(ctl: Int32Array, j: Job): void {
  ctl[J_KERNEL] = j.kernel;
  ctl[J_X] = j.x | 0;
  ctl[J_T] = j.T;
  ctl[J_K] = j.K;
  ctl[J_W] = j.w | 0;
  ctl[J_Y] = j.y | 0;
  ctl[J_LDY] = j.ldy;
}

export function writeRange(ctl: Int32Array, worker: number, r0: number, r1: number): void {
  ctl[slot(worker, S_R0)] = r0;
  ctl[slot(worker, S_R1)] = r1;
}

/** Run rows [r0, r1) of a job. Pointers travel as int32 words and come back as unsigned. */
export function runRows(k: KernelExports, j: Job, r0: number, r1: number): void {
  if (r1 <= r0) return;
  const wsz = j.kernel === KERNEL_BF16 ? 2 : 4;
  const w = j.w + r0 * j.K * wsz;
  const y = j.y + r0 * 4;
  if (j.kernel === KERNEL_BF16) k.linear_bf16(j.x, j.T, j.K, w, r1 - r0, y, j.ldy);
  else k.linear_f32(j.x, j.T, j.K, w, r1 - r0, y, j.ldy);
}

/** Worker side: run this worker's share of the current job. */
export function runShare(k: KernelExports, ctl: Int32Array, worker: number): void {
  const j: Job = {
    kernel: ctl[J_KERNEL]!,
    x: ctl[J_X]! >>> 0,
    T: ctl[J_T]!,
    K: ctl[J_K]!,
    w: ctl[J_W]! >>> 0,
    y: ctl[J_Y]! >>> 0,
    ldy: ctl[J_LDY]!,
  };
  runRows(k, j, ctl[slot(worker, S_R0)]!, ctl[slot(worker, S_R1)]!);
}

export function writeMessage(ctl: Int32Array, worker: number, msg: string): void {
  const bytes = new TextEncoder().encode(msg).subarray(0, MSG_WORDS * 4 - 1);
  const b = new Uint8Array(MSG_WORDS * 4);
  b.set(bytes);
  ctl.set(new Int32Array(b.buffer), slot(worker, S_MSG));
}

export function readMessage(ctl: Int32Array, worker: number): string {
  const words = ctl.slice(slot(worker, S_MSG), slot(worker, S_MSG) + MSG_WORDS);
  const b = new Uint8Array(words.buffer);
  const end = b.indexOf(0);
  return new TextDecoder().decode(b.subarray(0, end < 0 ? b.length : end));
}
