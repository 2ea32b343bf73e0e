/**
 * The Node library entry (`import … from 'switchyard'`): load and run MoE checkpoints on the CPU or WebGPU, trace
 * and report routing. The browser entry is `switchyard/browser` (src/browser.ts, bundled to dist/browser/).
 */
export { initCpuBackend, type CpuBackendOptions } from './backend/cpu/init.js';
export { Checkpoint, readConfig } from './io/checkpoint.js';
export { MemoryCheckpoint } from './io/memory-checkpoint.js';
export type { Config, WeightSource } from './io/weight-source.js';
export { loadTokenizer } from './io/tokenizer.js';
export { specFor, supportedModelTypes } from './models/registry.js';
export type { ModelSpec } from './models/spec.js';
export { summarize, type ModelSummary } from './models/summary.js';
export { loadModel, type LoadedModel } from './models/load.js';
export { CausalLM, type Capture, type ForwardResult, type LoadOptions } from './models/causal-lm.js';
export { loadDeviceModel, type LoadedDeviceModel } from './models/load-device.js';
export { DeviceCausalLM, deviceUnsupportedReason, type DeviceForwardOptions, type DeviceForwardResult } from './models/device-causal-lm.js';
export { GpuCausalLM, type GpuLoadOptions } from './models/gpu-causal-lm.js';
export type { DeviceOps } from './backend/device-ops.js';
export { CpuOps } from './backend/cpu/cpu-ops.js';
export { WebGpuOps, type WebGpuOpsOptions } from './backend/webgpu/webgpu-ops.js';
export { GpuContext } from './backend/webgpu/context.js';
export { generate, generateAsync, GenerationError, type GenerateOptions } from './infer/generate.js';
export { traceTokens, type RoutingTrace } from './analyze/routing-trace.js';
export { buildRoutingReport, routingReportHtml, type RoutingReport } from './analyze/routing-report.js';
export { UserError } from './util/errors.js';
