/**
 * `switchyard inspect <dir>`: what a checkpoint is, without loading its weights. With `--device webgpu|auto` it also
 * says which adapter would run it and whether each layer's stacked expert projections fit one storage binding
 * (what the grouped expert kernels need).
 */
import { summarize, type ModelSummary } from '../models/summary.js';
import { fmtBytes, fmtCount } from './format.js';
import { pickDevice, type DeviceChoice } from './device.js';

interface DeviceReport {
  device: 'cpu' | 'webgpu';
  reason?: string;
  adapter?: string;
  features?: string[];
  maxBindingBytes?: number;
  /** The f16 tensor-core fragment the adapter offers, in words. */
  tensorCores?: string;
  /** Largest stacked expert projection [E, F, D] of any MoE layer, as it would be stored on the GPU. */
  largestExpertProjectionBytes?: number;
  fits?: boolean;
}

async function deviceReport(dir: string, s: ModelSummary, choice: DeviceChoice, f16: boolean): Promise<DeviceReport> {
  const dev = await pickDevice(choice, { modelDir: dir });
  if (dev.kind === 'cpu') return { device: 'cpu', reason: dev.why };
  const ctx = dev.ctx;
  try {
    const bf16 = Object.keys(s.dtypes).some((d) => d.toUpperCase() === 'BF16');
    const bytesPer = bf16 || f16 ? 2 : 4;
    const largest = Math.max(0, ...s.perLayer.map((l) => (l.routedParams / 3) * bytesPer));
    const features = [...ctx.features];
    const sgm = ctx.subgroupMatrix;
    return {
      device: 'webgpu', adapter: ctx.adapterName, features, maxBindingBytes: ctx.maxBinding,
      tensorCores: sgm ? `f16 ${sgm.m}×${sgm.n}×${sgm.k} subgroup matrices, subgroups of ${sgm.subgroupSize} (used for f16 (--f16) and bf16 weights)` : 'none (no f16 subgroup matrices)',
      largestExpertProjectionBytes: largest, fits: largest <= ctx.maxBinding,
    };
  } finally {
    ctx.destroy();
  }
}

export async function inspectCommand(dir: string, opts: { json?: boolean; device?: DeviceChoice; f16?: boolean }): Promise<void> {
  const s = summarize(dir);
  const dev = opts.device && opts.device !== 'cpu' ? await deviceReport(dir, s, opts.device, opts.f16 ?? false) : undefined;
  if (opts.json) {
    const { spec: _spec, ...rest } = s;
    process.stdout.write(JSON.stringify(dev ? { ...rest, device: dev } : rest, null, 2) + '\n');
    return;
  }
  const lines = [
    `architecture     ${s.modelType}`,
    `layers           ${s.layers} (hidden ${s.hiddenSize}, vocab ${s.vocabSize})`,
    `parameters       ${fmtCount(s.params)} total, ${fmtCount(s.activeParams)} active per token (${((100 * s.activeParams) / s.params).toFixed(1)}%)`,
    `dtypes           ${Object.entries(s.dtypes).map(([d, n]) => `${d} ${fmtCount(n)}`).join(', ')}`,
    `memory           ${fmtBytes(s.diskBytes)} on disk, ${fmtBytes(s.memoryBytes)} loaded, experts ${fmtBytes(s.expertBytes)}`,
  ];
  if (dev?.device === 'cpu') lines.push(`device           cpu${dev.reason ? ` (${dev.reason})` : ''}`);
  if (dev?.device === 'webgpu') {
    lines.push(`device           webgpu: ${dev.adapter} [${dev.features!.join(', ')}], max storage binding ${fmtBytes(dev.maxBindingBytes!)}`);
    lines.push(`tensor cores     ${dev.tensorCores!}`);
    lines.push(`expert stacks    largest [E, F, D] projection ${fmtBytes(dev.largestExpertProjectionBytes!)}: ${dev.fits
      ? 'fits one binding' : 'does NOT fit one binding (bf16/--f16 halves f32; otherwise run it on the CPU)'}`);
  }
  lines.push('layers:');
  for (const l of s.perLayer) {
    const ffn = l.ffn === 'dense' ? 'dense MLP'
      : `MoE ${l.experts} experts, top-${l.topK} (${l.router})${l.sharedExperts ? ' + shared' : ''}, ${fmtCount(l.routedParams)} routed params`;
    lines.push(`  ${String(l.layer).padStart(3)}  ${l.attention.padEnd(28)} ${ffn}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
}
