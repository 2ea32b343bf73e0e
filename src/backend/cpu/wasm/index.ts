/**
 * The fast CPU path: SIMD WebAssembly kernels over a shared heap, split across worker threads.
 *
 * `initWasmBackend()` compiles the embedded kernels module (module.ts), creates the shared heap (heap.ts) and the
 * worker pool (pool.ts), then installs two hooks: the linear kernel (backend/cpu/linear.ts `setLinearKernel`) and
 * the weight allocator (backend/cpu/weight-store.ts `setWeightAllocator`), so weights loaded afterwards live in the
 * heap and are read in place by every thread. It returns false, leaving the plain-TS path, where WebAssembly SIMD,
 * SharedArrayBuffer or shared memory are unavailable.
 *
 * Per call, activations (x in, y out) are copied through a scratch region of the heap: they are small next to the
 * weights. Weights outside the heap (made before init, or past the wasm32 4 GiB limit, where the allocator falls
 * back to ordinary arrays with a one-time warning) are streamed through a staging region a few MiB at a time, so
 * they still use the SIMD kernels, at the cost of one extra copy.
 *
 * Threads: `threads` (total, main thread included) = option, else env SWITCHYARD_THREADS, else
 * min(os.availableParallelism(), 8). 1 disables the pool. A call is split across threads when T·N·K ≥
 * `minParallelMacs` (default 2^20); rows are split, so threaded results are bit-identical to single-threaded ones.
 */
import { availableParallelism } from 'node:os';
import { linearTs, setLinearKernel } from '../linear.js';
import { allocWeightData, setWeightAllocator, type WeightAllocator } from '../weight-store.js';
import type { Weight, WeightDType } from '../../../tensor/weight.js';
import { WasmHeap, align16, type HeapStats } from './heap.js';
import { instantiateKernels, kernelModule, wasmUnsupportedReason, type KernelExports } from './module.js';
import { KERNEL_BF16, KERNEL_F32, runRows, type Job } from './job.js';
import { WorkerPool } from './pool.js';

export interface WasmBackendOptions {
  /** Threads including the main thread (1: no workers). Default: env SWITCHYARD_THREADS, else min(cores, 8). */
  threads?: number;
  /** Smallest T·N·K worth waking the workers for. Default 2^20. */
  minParallelMacs?: number;
  /** Activation scratch (x and y tiles; longer inputs are processed in token tiles). Default 16 MiB. */
  scratchBytes?: number;
  /** Staging buffer for weights outside the heap. Default 8 MiB. */
  stagingBytes?: number;
  /** Cap on the heap (default and hard limit: 4 GiB, the wasm32 address space). Mainly for tests. */
  maxHeapBytes?: number;
  /**
   * Milliseconds a thread keeps polling before it sleeps in Atomics.wait (a worker waiting for its next job, the
   * main thread for the workers). Default 1: back-to-back kernel calls then never pay a futex wake-up.
   */
  spinMs?: number;
}

export interface WasmBackendInfo {
  threads: number;
  workersReady: number;
  minParallelMacs: number;
  heap: HeapStats;
  /** Kernel launches so far: all, split across threads, weights streamed through staging, TS fallback. */
  counts: KernelCounts;
}

export interface KernelCounts {
  launches: number;
  parallel: number;
  staged: number;
  ts: number;
}

interface Region {
  ptr: number;
  bytes: number;
}

interface Backend {
  heap: WasmHeap;
  k: KernelExports;
  pool?: WorkerPool;
  threads: number;
  minParallelMacs: number;
  scratch: Region;
  staging: Region;
  view: Float32Array;
  owned: WeakSet<ArrayBufferView>;
  warnedFull: boolean;
  warnedTs: boolean;
  warnedStaged: boolean;
  counts: KernelCounts;
}

let be: Backend | undefined;

/** Weights at least this large that are not in the heap get a one-time warning (staging them costs a copy per call). */
const STAGED_WARN_BYTES = 16 * 1024 * 1024;
let unsupported: string | undefined;

function envThreads(): number | undefined {
  const v = process.env['SWITCHYARD_THREADS'];
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    process.emitWarning(`SWITCHYARD_THREADS=${v} is not a positive integer; using the default`);
    return undefined;
  }
  return n;
}

function defaultThreads(): number {
  return Math.max(1, Math.min(availableParallelism(), 8));
}

/** Why initWasmBackend returned false (undefined if it did not, or was not called). */
export function wasmBackendUnavailableReason(): string | undefined {
  return unsupported;
}

/** Instantiate the kernels and install them (idempotent: a second call returns true and changes nothing). */
export function initWasmBackend(opts: WasmBackendOptions = {}): boolean {
  if (be) return true;
  unsupported = wasmUnsupportedReason();
  if (unsupported) return false;
  const req = opts.threads ?? envThreads() ?? defaultThreads();
  const threads = Number.isFinite(req) ? Math.max(1, Math.floor(req)) : defaultThreads();
  const scratchBytes = align16(opts.scratchBytes ?? 16 * 1024 * 1024);
  const stagingBytes = align16(opts.stagingBytes ?? 8 * 1024 * 1024);
  const maxPages = opts.maxHeapBytes !== undefined ? Math.floor(opts.maxHeapBytes / 65536) : undefined;
  let heap: WasmHeap;
  try {
    heap = new WasmHeap({ initialPages: Math.ceil((65536 + scratchBytes + stagingBytes) / 65536) + 1, maxPages });
  } catch (e) {
    unsupported = `could not create the shared WebAssembly heap (${(e as Error).message})`;
    return false;
  }
  const scratch = heap.alloc(scratchBytes);
  const staging = heap.alloc(stagingBytes);
  if (scratch === undefined || staging === undefined) {
    unsupported = 'the WebAssembly heap is too small for its scratch regions';
    return false;
  }
  const module = kernelModule();
  const k = instantiateKernels(module, heap.memory);
  const pool = threads > 1 ? new WorkerPool(module, heap.memory, threads - 1, { spinMs: opts.spinMs }) : undefined;
  be = {
    heap, k, pool, threads,
    minParallelMacs: opts.minParallelMacs ?? 1 << 20,
    scratch: { ptr: scratch, bytes: scratchBytes },
    staging: { ptr: staging, bytes: stagingBytes },
    view: new Float32Array(heap.buffer),
    owned: new WeakSet(),
    warnedFull: false,
    warnedTs: false,
    warnedStaged: false,
    counts: { launches: 0, parallel: 0, staged: 0, ts: 0 },
  };
  setWeightAllocator(allocWeight);
  setLinearKernel(wasmLinearKernel);
  return true;
}

/**
 * Uninstall the hooks and stop the workers. Weights already in the heap stay valid (plain typed arrays over the
 * heap's memory; the TS kernel reads them); they are simply no longer recognised as heap weights.
 */
export function shutdownWasmBackend(): Promise<void> {
  const b = be;
  if (!b) return Promise.resolve();
  be = undefined;
  setLinearKernel(undefined);
  setWeightAllocator(undefined);
  return b.pool ? b.pool.close() : Promise.resolve();
}

/** Resolves once every worker has started or failed to (calls made earlier simply use fewer threads). */
export function wasmBackendReady(): Promise<void> {
  return be?.pool ? be.pool.ready() : Promise.resolve();
}

export function wasmBackendInfo(): WasmBackendInfo | undefined {
  if (!be) return undefined;
  return {
    threads: be.threads,
    workersReady: be.pool ? be.pool.readyWorkers().length : 0,
    minParallelMacs: be.minParallelMacs,
    heap: be.heap.stats(),
    counts: { ...be.counts },
  };
}

/** True when `data` lives in the active heap (kernels read it in place). */
export function isHeapWeightData(data: ArrayBufferView): boolean {
  return !!be && be.heap.owns(data);
}

/** The weight allocator installed by initWasmBackend (heap first; ordinary arrays when the heap is full). */
const allocWeight: WeightAllocator = (dtype: WeightDType, count: number) => allocHeapWeight(dtype, count, true);

/**
 * Like the installed weight allocator, but a reused heap block is not zeroed first: for storage the caller
 * overwrites entirely before anyone reads it (offloaded experts read from disk). Without the backend: allocWeightData.
 */
export function allocWeightDataForOverwrite(dtype: WeightDType, count: number): Float32Array | Uint16Array {
  return be ? allocHeapWeight(dtype, count, false) : allocWeightData(dtype, count);
}

function allocHeapWeight(dtype: WeightDType, count: number, zero: boolean): Float32Array | Uint16Array {
  const b = be;
  const plain = (): Float32Array | Uint16Array => (dtype === 'f32' ? new Float32Array(count) : new Uint16Array(count));
  if (!b) return plain();
  const ptr = b.heap.alloc(count * (dtype === 'f32' ? 4 : 2), zero);
  if (ptr === undefined) {
    if (!b.warnedFull) {
      b.warnedFull = true;
      const gib = (b.heap.maxBytes / 2 ** 30).toFixed(2);
      process.emitWarning(
        `the WebAssembly weight heap is full (${gib} GiB; wasm32 addresses at most 4 GiB): further weights stay in ordinary ` +
        'memory and are streamed through a staging buffer on each use (slower). Keep weights in bf16 to fit more.',
        { code: 'SWITCHYARD_WASM_HEAP_FULL' },
      );
    }
    return plain();
  }
  const data = dtype === 'f32' ? b.heap.f32(ptr, count) : b.heap.u16(ptr, count);
  b.owned.add(data);
  return data;
}

/**
 * Give a weight's heap block back (for arrays returned by the allocator, not their subarrays). Returns false and
 * does nothing for any other array. The caller must not use `data` (or views of it) afterwards.
 */
export function freeWeightData(data: Float32Array | Uint16Array): boolean {
  const b = be;
  if (!b || !b.owned.has(data)) return false;
  b.owned.delete(data);
  b.heap.release(data.byteOffset);
  return true;
}

function heapView(b: Backend): Float32Array {
  if (b.view.buffer !== b.heap.buffer) b.view = new Float32Array(b.heap.buffer);
  return b.view;
}

function dispatch(b: Backend, job: Job, rows: number, maxThreads: number, minMacs: number): void {
  b.counts.launches++;
  if (b.pool && maxThreads > 1 && job.T * rows * job.K >= minMacs) {
    if (b.pool.run(b.k, job, rows, maxThreads - 1) > 1) b.counts.parallel++;
  } else {
    runRows(b.k, job, 0, rows);
  }
}

export interface WasmLinearOptions {
  /** Threads to use at most for this call (1: main thread only). Default: the backend's thread count. */
  maxThreads?: number;
  /** Split across threads whatever the size (tests). */
  forceParallel?: boolean;
}

/**
 * y[T, N] = x[T, K] · W[N, K]ᵀ with the WASM kernels (the function installed as the linear kernel).
 * Throws if the backend is not initialised.
 */
export function wasmLinear(x: Float32Array, T: number, K: number, w: Weight, N: number, out: Float32Array, opts: WasmLinearOptions = {}): void {
  const b = be;
  if (!b) throw new Error('wasmLinear: the WASM backend is not initialised (call initWasmBackend first)');
  if (w.dtype !== 'f32' && w.dtype !== 'bf16') throw new Error(`linear: ${w.name} has unsupported dtype ${String(w.dtype)}`);
  if (w.data.length < N * K) throw new Error(`linear: ${w.name} holds ${w.data.length} values, expected ${N}·${K}`);
  if (x.length < T * K) throw new Error(`linear: input has ${x.length} values, expected ${T}·${K}`);
  if (out.length < T * N) throw new Error(`linear: output has ${out.length} values, expected ${T}·${N}`);
  if (T <= 0 || N <= 0) return;
  if (K <= 0) {
    out.fill(0, 0, T * N);
    return;
  }
  run(b, x, T, K, w, N, out, opts.maxThreads ?? b.threads, opts.forceParallel ? 0 : b.minParallelMacs);
}

function run(b: Backend, x: Float32Array, T: number, K: number, w: Weight, N: number, out: Float32Array, maxThreads: number, minMacs: number): void {
  const bf16 = w.dtype === 'bf16';
  const rowBytes = K * (bf16 ? 2 : 4);
  const inHeap = b.heap.owns(w.data);
  // Token tile: x [tc, K] then y [tc, N] in the scratch region.
  const tc = Math.min(T, Math.floor((b.scratch.bytes - 16) / ((K + N) * 4)));
  const stageRows = inHeap ? N : Math.min(N, Math.floor(b.staging.bytes / rowBytes));
  if (tc < 1 || stageRows < 1) {
    if (!b.warnedTs) {
      b.warnedTs = true;
      process.emitWarning(`linear ${w.name} [${N}, ${K}] is too large for the WASM scratch buffers; using the TS kernel`);
    }
    b.counts.ts++;
    linearTs(x, T, K, w, N, out);
    return;
  }
  const xPtr = b.scratch.ptr;
  const yPtr = xPtr + align16(tc * K * 4);
  const kernel = bf16 ? KERNEL_BF16 : KERNEL_F32;
  for (let t0 = 0; t0 < T; t0 += tc) {
    const tn = Math.min(tc, T - t0);
    let view = heapView(b);
    view.set(x.subarray(t0 * K, (t0 + tn) * K), xPtr >>> 2);
    if (bf16) b.k.permute_x(xPtr, tn, K);
    if (inHeap) {
      dispatch(b, { kernel, x: xPtr, T: tn, K, w: w.data.byteOffset, y: yPtr, ldy: N }, N, maxThreads, minMacs);
    } else {
      if (!b.warnedStaged && !b.warnedFull && N * rowBytes >= STAGED_WARN_BYTES) {
        b.warnedStaged = true;
        process.emitWarning(
          `linear weight ${w.name} (${(N * rowBytes / 2 ** 20).toFixed(0)} MiB) is not in the WebAssembly heap (made before ` +
          'initWasmBackend?): it is copied through a staging buffer on every call. Initialise the backend before loading weights.',
          { code: 'SWITCHYARD_WASM_STAGED' },
        );
      }
      const src = new Uint8Array(w.data.buffer, w.data.byteOffset, N * rowBytes);
      for (let r0 = 0; r0 < N; r0 += stageRows) {
        const rn = Math.min(stageRows, N - r0);
        new Uint8Array(b.heap.buffer, b.staging.ptr, rn * rowBytes).set(src.subarray(r0 * rowBytes, (r0 + rn) * rowBytes));
        b.counts.staged++;
        dispatch(b, { kernel, x: xPtr, T: tn, K, w: b.staging.ptr, y: yPtr + r0 * 4, ldy: N }, rn, maxThreads, minMacs);
      }
    }
    view = heapView(b);
    out.set(view.subarray(yPtr >>> 2, (yPtr >>> 2) + tn * N), t0 * N);
  }
}

const wasmLinearKernel = (x: Float32Array, T: number, K: number, w: Weight, N: number, out: Float32Array): void =>
  wasmLinear(x, T, K, w, N, out);
