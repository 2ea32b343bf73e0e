/**
 * `switchyard analyze [model-dir] --text FILE [--compare FILE2] [--out DIR]`: record the routing of a text (and
 * optionally a second one), compute the routing analytics of src/analyze/metrics/, and write a self-contained
 * report.html + report.json (atomically). Without a model folder it uses the shipped default model.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { loadModel } from '../models/load.js';
import type { CausalLM } from '../models/causal-lm.js';
import { loadTokenizer } from '../io/tokenizer.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import { UserError } from '../util/errors.js';
import { progress } from './progress.js';
import { defaultModelDir, isModelDir } from '../models/default-model.js';
import { traceTokens, type RoutingTrace } from '../analyze/routing-trace.js';
import { buildRoutingReport, routingReportHtml, type RoutingReport } from '../analyze/routing-report.js';

export interface AnalyzeOptions {
  text: string;
  compare?: string;
  out?: string;
  window?: number;
  maxTokens?: number;
  /** Also write trace.json (and trace-compare.json). */
  trace?: boolean;
}

function readText(file: string): string {
  if (!existsSync(file)) throw new UserError(`text file ${file} does not exist`);
  const s = readFileSync(file, 'utf8');
  if (!s.trim()) throw new UserError(`text file ${file} is empty`);
  return s;
}

function record(model: CausalLM, ids: number[], label: string, window: number | undefined): RoutingTrace {
  const bar = progress(label, ids.length, 'tokens');
  try {
    return traceTokens(model, ids, { window, onProgress: (d) => bar.update(d) });
  } finally {
    bar.stop();
  }
}

export function analyzeCommand(dirArg: string | undefined, o: AnalyzeOptions): { report: RoutingReport; out: string } {
  let dir = dirArg;
  if (dir === undefined) {
    dir = defaultModelDir();
    if (!isModelDir(dir)) throw new UserError(`no model folder given and the default model is missing at ${dir}`);
  } else if (!isModelDir(dir)) throw new UserError(`${dir} is not a model folder (no config.json)`);
  const out = o.out ?? 'analysis';
  const tok = loadTokenizer(dir);
  const encode = (file: string): number[] => {
    let ids = tok.encode(readText(file));
    if (o.maxTokens !== undefined) ids = ids.slice(0, o.maxTokens);
    if (ids.length === 0) throw new UserError(`${file} encodes to no tokens`);
    return ids;
  };
  const ids = encode(o.text);
  const ids2 = o.compare !== undefined ? encode(o.compare) : undefined;
  let bar: ReturnType<typeof progress> | undefined;
  const { model, spec } = loadModel(dir, { onProgress: (d, t) => { (bar ??= progress('loading', t, 'layers')).update(d); } });
  bar?.stop();
  if (!spec.layers.some((l) => l.ffn.kind !== 'dense')) throw new UserError(`${dir} has no MoE layers to analyze`);
  const trace = record(model, ids, 'routing', o.window);
  const trace2 = ids2 ? record(model, ids2, 'routing (compare)', o.window) : undefined;
  const report = buildRoutingReport(trace, { model: dir, text: basename(o.text) },
    trace2 && o.compare ? { trace: trace2, text: basename(o.compare) } : undefined);
  mkdirSync(out, { recursive: true });
  // NaN (undefined metrics) becomes null in JSON.
  writeFileAtomic(join(out, 'report.json'), JSON.stringify(report, null, 1) + '\n');
  writeFileAtomic(join(out, 'report.html'), routingReportHtml(report));
  if (o.trace) {
    writeFileAtomic(join(out, 'trace.json'), JSON.stringify(trace) + '\n');
    if (trace2) writeFileAtomic(join(out, 'trace-compare.json'), JSON.stringify(trace2) + '\n');
  }
  process.stderr.write(`wrote ${join(out, 'report.html')} and report.json (${ids.length} tokens, ${trace.layers.length} MoE layers)\n`);
  return { report, out };
}
