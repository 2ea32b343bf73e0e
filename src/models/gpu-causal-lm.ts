/** The device graph on WebGPU: `GpuCausalLM.load(ctx, spec, weights)` uploads the weights and returns the model. */
import type { WeightSource } from '../io/weight-source.js';
import type { ModelSpec } from './spec.js';
import { DeviceCausalLM, type DeviceLoadOptions } from './device-causal-lm.js';
import type { GpuContext, GpuTensor } from '../backend/webgpu/context.js';
import type { GpuWeight } from '../backend/webgpu/weights.js';
import type { GpuExpertSet } from '../backend/webgpu/kernels/moe.js';
import { WebGpuOps, type WebGpuOpsOptions } from '../backend/webgpu/webgpu-ops.js';

export type GpuLoadOptions = WebGpuOpsOptions & DeviceLoadOptions;

export class GpuCausalLM extends DeviceCausalLM<GpuTensor, GpuWeight, GpuExpertSet> {
  static async load(ctx: GpuContext, spec: ModelSpec, ck: WeightSource, opts: GpuLoadOptions = {}): Promise<GpuCausalLM> {
    const model = new GpuCausalLM(new WebGpuOps(ctx, opts), spec, ck, opts);
    await ctx.sync();
    return model;
  }
}
