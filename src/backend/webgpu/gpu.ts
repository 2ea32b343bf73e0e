/**
 * Finding a WebGPU device: `navigator.gpu` in a browser, Dawn through the `webgpu` npm package in Node (imported
 * dynamically so the core bundles for a page without it). Requests the adapter's largest buffer limits and the
 * features Switchyard can use (shader-f16, subgroups).
 */
import { UserError } from '../../util/errors.js';

/**
 * The tensor-core fragment a kernel can use: f16 × f16 → f32 subgroup matrices of m×k by k×n (the adapter's
 * `chromium-experimental-subgroup-matrix` configuration), on subgroups of `subgroupSize` invocations.
 */
export interface SubgroupMatrixShape {
  m: number;
  n: number;
  k: number;
  subgroupSize: number;
}

export interface GpuDeviceInfo {
  device: GPUDevice;
  adapterName: string;
  features: ReadonlySet<string>;
  /** Present when the device was created with subgroup matrices that have an f16 → f32 configuration. */
  subgroupMatrix?: SubgroupMatrixShape;
}

/** The fragment shapes the kernels are written for (m, n ∈ {8, 16}, k ∈ {8, 16}); bigger fragments first. */
const FRAGMENTS: readonly [number, number, number][] = [[16, 16, 16], [16, 8, 16], [8, 16, 16], [16, 8, 8], [8, 8, 16], [8, 8, 8]];

interface SubgroupMatrixConfigLike { componentType: string; resultComponentType: string; M: number; N: number; K: number }

/**
 * The best f16 → f32 configuration among the adapter's, if any is one the kernels support. The kernels split a
 * workgroup of 4 × subgroupMaxSize invocations into exactly 4 subgroups, so an adapter whose subgroup size may vary
 * (min < max), or exceeds 64, is not used.
 */
export function pickSubgroupMatrix(configs: readonly SubgroupMatrixConfigLike[], subgroupMinSize: number, subgroupMaxSize: number): SubgroupMatrixShape | undefined {
  const subgroupSize = subgroupMaxSize;
  // 4 subgroups must divide the 32 × 32 A tile and the 32 × 64 result tile evenly: at most 64 invocations each.
  if (!(subgroupSize >= 1 && subgroupSize <= 64) || subgroupMinSize !== subgroupMaxSize) return undefined;
  for (const [m, n, k] of FRAGMENTS) {
    if (configs.some((c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && c.M === m && c.N === n && c.K === k)) {
      return { m, n, k, subgroupSize };
    }
  }
  return undefined;
}

export interface RequestGpuOptions {
  /** Dawn toggles for Node (e.g. `vulkan_enable_f16_on_nvidia`); ignored in a browser. */
  dawnToggles?: string[];
  /** Dawn backend in Node (default: vulkan on Linux, the platform default elsewhere). */
  backend?: string;
}

/** Dawn's GPU objects in Node, one per set of creation flags (backend, toggles). */
const nodeGpus = new Map<string, GPU>();
let nodeGlobalsSet = false;

interface NodeWebGpuModule {
  create(options: string[]): GPU;
  globals: Record<string, unknown>;
}

async function gpuEntry(opts: RequestGpuOptions): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  const isNode = typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';
  if (!isNode) throw new UserError('WebGPU is not available in this browser (navigator.gpu is missing)');
  const platform = (globalThis as { process?: { platform?: string } }).process?.platform;
  const backend = opts.backend ?? (platform === 'linux' ? 'vulkan' : undefined);
  // f16 on NVIDIA's Vulkan driver needs a toggle; subgroup-matrix loads and stores skip Tint's bounds clamping where the
  // driver guarantees robust access for them (every load of coop-gemm.ts is in bounds anyway).
  const toggles = ['allow_unsafe_apis', ...(opts.dawnToggles ?? ['vulkan_enable_f16_on_nvidia', 'vulkan_use_cooperative_matrix_robust_access'])];
  const flags = [`enable-dawn-features=${toggles.join(',')}`];
  if (backend) flags.unshift(`backend=${backend}`);
  const key = flags.join(' ');
  const cached = nodeGpus.get(key);
  if (cached) return cached;
  let mod: NodeWebGpuModule;
  try {
    // A variable specifier keeps bundlers from pulling the Node-only native package into a browser build.
    const name = 'webgpu';
    mod = (await import(name)) as NodeWebGpuModule;
  } catch (e) {
    throw new UserError(`WebGPU: the 'webgpu' package (Dawn for Node) could not be loaded: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!nodeGlobalsSet) { Object.assign(globalThis, mod.globals); nodeGlobalsSet = true; }
  const gpu = mod.create(flags);
  nodeGpus.set(key, gpu);
  return gpu;
}

/** The first adapter's device with its maximum buffer limits, or a UserError saying why there is none. */
export async function requestGpuDevice(opts: RequestGpuOptions = {}): Promise<GpuDeviceInfo> {
  const gpu = await gpuEntry(opts);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw new UserError('WebGPU: no adapter found (on Linux without a GPU install Mesa\'s lavapipe: mesa-vulkan-drivers from bookworm-backports)');
  }
  const wanted = ['shader-f16', 'subgroups', 'timestamp-query'] as GPUFeatureName[];
  const info = adapter.info as GPUAdapterInfo & { subgroupMatrixConfigs?: readonly SubgroupMatrixConfigLike[]; subgroupMinSize?: number; subgroupMaxSize?: number };
  // Tensor-core tiles (Dawn's experimental subgroup matrices) are requested only when an f16 → f32 shape we have
  // kernels for is offered, together with shader-f16 and subgroups.
  const SGM = 'chromium-experimental-subgroup-matrix';
  const sgm = adapter.features.has(SGM as GPUFeatureName) && adapter.features.has('shader-f16') && adapter.features.has('subgroups')
    ? pickSubgroupMatrix(info?.subgroupMatrixConfigs ?? [], info?.subgroupMinSize ?? 0, info?.subgroupMaxSize ?? 0) : undefined;
  if (sgm) wanted.push(SGM as GPUFeatureName);
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  const L = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxStorageBufferBindingSize: L.maxStorageBufferBindingSize,
      maxBufferSize: L.maxBufferSize,
      maxComputeWorkgroupStorageSize: L.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: L.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: L.maxComputeWorkgroupSizeX,
      maxStorageBuffersPerShaderStage: L.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupsPerDimension: L.maxComputeWorkgroupsPerDimension,
    },
  });
  const adapterName = [info?.vendor, info?.architecture, info?.device, info?.description].filter((s) => s).join(' ') || 'unknown adapter';
  return { device, adapterName, features: new Set(requiredFeatures), ...(sgm ? { subgroupMatrix: sgm } : {}) };
}
