/**
 * Finding a WebGPU device: `navigator.gpu` in a browser, Dawn through the `webgpu` npm package in Node (imported
 * dynamically so the core bundles for a page without it). Requests the adapter's largest buffer limits and the
 * features Switchyard can use (shader-f16, subgroups).
 */
import { UserError } from '../../util/errors.js';

export interface GpuDeviceInfo {
  device: GPUDevice;
  adapterName: string;
  features: ReadonlySet<string>;
}

export interface RequestGpuOptions {
  /** Dawn toggles for Node (e.g. `vulkan_enable_f16_on_nvidia`); ignored in a browser. */
  dawnToggles?: string[];
  /** Dawn backend in Node (default: vulkan on Linux, the platform default elsewhere). */
  backend?: string;
}

let nodeGpu: GPU | undefined;

interface NodeWebGpuModule {
  create(options: string[]): GPU;
  globals: Record<string, unknown>;
}

async function gpuEntry(opts: RequestGpuOptions): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  if (nodeGpu) return nodeGpu;
  const isNode = typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';
  if (!isNode) throw new UserError('WebGPU is not available in this browser (navigator.gpu is missing)');
  let mod: NodeWebGpuModule;
  try {
    // A variable specifier keeps bundlers from pulling the Node-only native package into a browser build.
    const name = 'webgpu';
    mod = (await import(name)) as NodeWebGpuModule;
  } catch (e) {
    throw new UserError(`WebGPU: the 'webgpu' package (Dawn for Node) could not be loaded: ${e instanceof Error ? e.message : String(e)}`);
  }
  Object.assign(globalThis, mod.globals);
  const platform = (globalThis as { process?: { platform?: string } }).process?.platform;
  const backend = opts.backend ?? (platform === 'linux' ? 'vulkan' : undefined);
  const toggles = ['allow_unsafe_apis', ...(opts.dawnToggles ?? ['vulkan_enable_f16_on_nvidia'])];
  const flags = [`enable-dawn-features=${toggles.join(',')}`];
  if (backend) flags.unshift(`backend=${backend}`);
  nodeGpu = mod.create(flags);
  return nodeGpu;
}

/** The first adapter's device with its maximum buffer limits, or a UserError saying why there is none. */
export async function requestGpuDevice(opts: RequestGpuOptions = {}): Promise<GpuDeviceInfo> {
  const gpu = await gpuEntry(opts);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw new UserError('WebGPU: no adapter found (on Linux without a GPU install Mesa\'s lavapipe: mesa-vulkan-drivers from bookworm-backports)');
  }
  const wanted: GPUFeatureName[] = ['shader-f16', 'subgroups', 'timestamp-query'];
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
  const info = adapter.info;
  const adapterName = [info?.vendor, info?.architecture, info?.device, info?.description].filter((s) => s).join(' ') || 'unknown adapter';
  return { device, adapterName, features: new Set(requiredFeatures) };
}
