/** Choose the CPU kernels: WebAssembly SIMD with a worker pool when available, else plain TypeScript. */
import { initWasmBackend } from './wasm/index.js';
import { linearKernelName } from './linear.js';

export interface CpuBackendOptions {
  /** false: plain TypeScript kernels only. */
  wasm?: boolean;
  /** Threads including the main thread (default: SWITCHYARD_THREADS, else min(cores, 8)). */
  threads?: number;
}

/** Install the fastest available kernels; returns the linear kernel in use ('wasm-simd' or 'ts'). */
export function initCpuBackend(opts: CpuBackendOptions = {}): string {
  if (opts.wasm !== false && process.env['SWITCHYARD_WASM'] !== '0') initWasmBackend({ threads: opts.threads });
  return linearKernelName();
}
