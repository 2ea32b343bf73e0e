/** `switchyard inspect <dir>`: what a checkpoint is, without loading its weights. */
import { summarize } from '../models/summary.js';
import { fmtBytes, fmtCount } from './format.js';

export function inspectCommand(dir: string, opts: { json?: boolean }): void {
  const s = summarize(dir);
  if (opts.json) {
    const { spec: _spec, ...rest } = s;
    process.stdout.write(JSON.stringify(rest, null, 2) + '\n');
    return;
  }
  const lines = [
    `architecture     ${s.modelType}`,
    `layers           ${s.layers} (hidden ${s.hiddenSize}, vocab ${s.vocabSize})`,
    `parameters       ${fmtCount(s.params)} total, ${fmtCount(s.activeParams)} active per token (${((100 * s.activeParams) / s.params).toFixed(1)}%)`,
    `dtypes           ${Object.entries(s.dtypes).map(([d, n]) => `${d} ${fmtCount(n)}`).join(', ')}`,
    `memory           ${fmtBytes(s.diskBytes)} on disk, ${fmtBytes(s.memoryBytes)} loaded, experts ${fmtBytes(s.expertBytes)}`,
    'layers:',
  ];
  for (const l of s.perLayer) {
    const ffn = l.ffn === 'dense' ? 'dense MLP'
      : `MoE ${l.experts} experts, top-${l.topK} (${l.router})${l.sharedExperts ? ' + shared' : ''}, ${fmtCount(l.routedParams)} routed params`;
    lines.push(`  ${String(l.layer).padStart(3)}  ${l.attention.padEnd(28)} ${ffn}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
}
