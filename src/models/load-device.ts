/** Open a Hugging Face model folder and build its graph on a device backend (weights uploaded at load). */
import { Checkpoint, readConfig, type Config } from '../io/checkpoint.js';
import { specFor } from './registry.js';
import type { ModelSpec } from './spec.js';
import type { DeviceOps } from '../backend/device-ops.js';
import { DeviceCausalLM, type DeviceLoadOptions } from './device-causal-lm.js';

export interface LoadedDeviceModel<H, W, X> {
  config: Config;
  spec: ModelSpec;
  model: DeviceCausalLM<H, W, X>;
}

export function loadDeviceModel<H, W, X>(dir: string, ops: DeviceOps<H, W, X>, opts: DeviceLoadOptions = {}): LoadedDeviceModel<H, W, X> {
  const config = readConfig(dir);
  const ck = new Checkpoint(dir);
  try {
    const spec = specFor(config, new Set(ck.names()));
    return { config, spec, model: new DeviceCausalLM(ops, spec, ck, opts) };
  } finally {
    ck.close();
  }
}
