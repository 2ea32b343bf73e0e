/**
 * `--device cpu|webgpu|auto` for every command. cpu: the WASM/TS kernels. webgpu: the device graph on WebGPU
 * (an error if there is no adapter, or if the command or model needs a CPU-only feature). auto: WebGPU when a
 * hardware adapter is present and the job can run there, else the CPU — a software adapter (lavapipe, SwiftShader)
 * is never picked automatically, it is slower than the CPU kernels.
 */
import { UserError } from '../util/errors.js';
import { GpuContext } from '../backend/webgpu/context.js';
import { WebGpuOps } from '../backend/webgpu/webgpu-ops.js';
import { readConfig, Checkpoint } from '../io/checkpoint.js';
import { specFor } from '../models/registry.js';
import { deviceUnsupportedReason } from '../models/device-causal-lm.js';

export type DeviceChoice = 'cpu' | 'webgpu' | 'auto';
export const DEVICE_CHOICES: readonly DeviceChoice[] = ['cpu', 'webgpu', 'auto'];

export type PickedDevice = { kind: 'cpu'; why?: string } | { kind: 'webgpu'; ctx: GpuContext; ops(f16: boolean): WebGpuOps };

export interface DeviceNeeds {
  /** A CPU-only feature the command asked for (its flag), if any. */
  cpuOnly?: string;
  /** The model folder, to check that its routers can run on the device. */
  modelDir?: string;
}

function modelReason(dir: string | undefined): string | undefined {
  if (!dir) return undefined;
  const ck = new Checkpoint(dir);
  try {
    return deviceUnsupportedReason(specFor(readConfig(dir), new Set(ck.names())));
  } finally {
    ck.close();
  }
}

export async function pickDevice(choice: DeviceChoice, needs: DeviceNeeds = {}): Promise<PickedDevice> {
  if (!DEVICE_CHOICES.includes(choice)) throw new UserError(`--device must be one of ${DEVICE_CHOICES.join(', ')}, got "${choice}"`);
  if (choice === 'cpu') return { kind: 'cpu' };
  const why = needs.cpuOnly ? `${needs.cpuOnly} runs on the CPU only` : modelReason(needs.modelDir);
  if (why) {
    if (choice === 'webgpu') throw new UserError(`--device webgpu: ${why}`);
    return { kind: 'cpu', why };
  }
  let ctx: GpuContext;
  try {
    ctx = await GpuContext.create();
  } catch (e) {
    if (choice === 'webgpu') throw e instanceof UserError ? e : new UserError(`--device webgpu: ${e instanceof Error ? e.message : String(e)}`);
    return { kind: 'cpu', why: 'no WebGPU adapter' };
  }
  if (choice === 'auto' && ctx.isSoftware) {
    ctx.destroy();
    return { kind: 'cpu', why: `the WebGPU adapter is a software renderer (${ctx.adapterName})` };
  }
  return { kind: 'webgpu', ctx, ops: (f16) => new WebGpuOps(ctx, { f16 }) };
}

/** For commands that run on the CPU only (training, analytics): accept cpu/auto, refuse webgpu with the reason. */
export function requireCpu(choice: DeviceChoice | undefined, what: string): void {
  if (choice !== undefined && !DEVICE_CHOICES.includes(choice)) throw new UserError(`--device must be one of ${DEVICE_CHOICES.join(', ')}, got "${choice}"`);
  if (choice === 'webgpu') throw new UserError(`--device webgpu: ${what} runs on the CPU backend only (WebGPU runs inference: generate)`);
}
