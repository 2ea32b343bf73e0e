/**
 * The compiled kernels module (embedded by scripts/build-wasm.mjs, see kernels.generated.ts) and its instances.
 * One Module is compiled per process and posted to the workers; every thread instantiates it over the same shared
 * memory. Compilation and instantiation are synchronous (Node allows both for any module size).
 */
import { KERNELS_WASM_BASE64 } from './kernels.generated.js';

/** Kernel entry points; every pointer is a byte address in the shared memory (u32, passed as a JS number). */
export interface KernelExports {
  /** y[t·ldy + r] = Σ_k x[t·K + k] · w[r·K + k] for t < T, r < rows; f32 weights. */
  linear_f32(x: number, T: number, K: number, w: number, rows: number, y: number, ldy: number): void;
  /** The same for bf16 weights; x must have been through `permute_x`. */
  linear_bf16(x: number, T: number, K: number, w: number, rows: number, y: number, ldy: number): void;
  /** Reorders each full 8-block of every x row to [x0 x2 x4 x6 x1 x3 x5 x7], in place. */
  permute_x(x: number, T: number, K: number): void;
}

export type KernelName = 'linear_f32' | 'linear_bf16';

let bytes: Uint8Array<ArrayBuffer> | undefined;
let compiled: WebAssembly.Module | undefined;

export function kernelBytes(): Uint8Array<ArrayBuffer> {
  bytes ??= Uint8Array.from(Buffer.from(KERNELS_WASM_BASE64, 'base64'));
  return bytes;
}

/**
 * Why the kernels cannot run here, or undefined when they can: needs SharedArrayBuffer, shared
 * WebAssembly.Memory and fixed-width SIMD (the module fails validation without it).
 */
export function wasmUnsupportedReason(): string | undefined {
  if (typeof WebAssembly !== 'object') return 'WebAssembly is not available';
  if (typeof SharedArrayBuffer !== 'function') return 'SharedArrayBuffer is not available';
  try {
    const m = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    if (!(m.buffer instanceof SharedArrayBuffer)) return 'WebAssembly.Memory does not support shared: true';
  } catch (e) {
    return `shared WebAssembly.Memory is not available (${(e as Error).message})`;
  }
  if (!WebAssembly.validate(kernelBytes())) return 'WebAssembly SIMD is not supported (the kernels module does not validate)';
  return undefined;
}

export function kernelModule(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(kernelBytes());
  return compiled;
}

export function instantiateKernels(module: WebAssembly.Module, memory: WebAssembly.Memory): KernelExports {
  const inst = new WebAssembly.Instance(module, { env: { memory } });
  return inst.exports as unknown as KernelExports;
}
