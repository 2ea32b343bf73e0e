/** `switchyard compare-routers`: train several routers on the same data, tokens and seed, and report. */
import { join } from 'node:path';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../io/atomic-write.js';
import { ROUTER_PRESETS, routerPreset } from '../train/presets.js';
import { prepareData } from '../train/prepare-data.js';
import { routerComparisonReport, type RouterRun } from '../analyze/router-comparison.js';
import { resolveSettings, runTraining, type TrainCommandOptions } from './train.js';
import { UserError } from '../util/errors.js';

export const DEFAULT_COMPARISON = ['softmax-topk', 'no-balance', 'aux-free', 'expert-choice', 'top-p', 'relu'];

const runDir = (out: string, router: string): string => join(out, router.replace(/[^a-z0-9+-]/gi, '_'));

/** Rebuild the report from the runs' training_log.json files (no training). */
function reportFromLogs(out: string, names: readonly string[]): void {
  const runs: RouterRun[] = [];
  const previous = join(out, 'report.json');
  let setup = existsSync(previous) ? String((JSON.parse(readFileSync(previous, 'utf8')) as { setup?: unknown }).setup ?? '') : '';
  for (const router of names) {
    const p = join(runDir(out, router), 'training_log.json');
    if (!existsSync(p)) throw new UserError(`--report-only: ${p} does not exist (train that router first)`);
    const log = JSON.parse(readFileSync(p, 'utf8')) as { history: RouterRun['history']; finalValLoss: number; tokensPerSec: number; seconds: number };
    runs.push({ router, describe: ROUTER_PRESETS[router]?.describe ?? router, history: log.history, finalValLoss: log.finalValLoss, tokensPerSec: log.tokensPerSec, seconds: log.seconds });
  }
  writeReport(out, runs, setup || `${names.length} routers (rebuilt from their training logs)`);
}

function writeReport(out: string, runs: RouterRun[], setup: string): void {
  const { html, json } = routerComparisonReport(runs, setup);
  writeFileAtomic(join(out, 'report.html'), html);
  writeFileAtomic(join(out, 'report.json'), JSON.stringify(json, null, 1) + '\n');
  process.stderr.write(`report: ${join(out, 'report.html')}\n`);
}

export function compareRoutersCommand(o: TrainCommandOptions & { routers?: string; reportOnly?: boolean }): void {
  const names = (o.routers ?? DEFAULT_COMPARISON.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new UserError('--routers is empty');
  if (o.reportOnly) return reportFromLogs(o.out, names);
  const settings = resolveSettings({ steps: '150', evalEvery: '25', ...o });
  for (const n of names) routerPreset(n, settings.shape);
  mkdirSync(o.out, { recursive: true });
  const data = prepareData({ textFiles: o.text, tokenizerDir: o.tokenizer, cachePath: join(o.out, 'tokens.safetensors') });
  const runs: RouterRun[] = [];
  for (const router of names) {
    const r = runTraining(runDir(o.out, router), { ...settings, router }, data, { label: router.padEnd(18) });
    runs.push({ router, describe: ROUTER_PRESETS[router]!.describe, history: r.history, finalValLoss: r.finalValLoss, tokensPerSec: r.tokensPerSec, seconds: r.seconds });
    process.stderr.write(`${router}: validation loss ${r.finalValLoss.toFixed(4)}, ${Math.round(r.tokensPerSec)} tokens/s\n`);
  }
  const s = settings.shape;
  const h = settings.hyper;
  const setup = `${names.length} routers, same data (${data.source}), tokens and seed ${h.seed}: ${s.layers} layers, hidden ${s.hidden}, ` +
    `${s.experts} experts (k = ${s.topK} where the router has a k), expert FFN ${s.expertFfn}, vocabulary ${data.vocabSize}; ` +
    `${h.steps} steps of ${h.batchSize}×${h.seqLen} tokens, lr ${h.lr}, validation on ${h.evalBatches} batches.`;
  writeReport(o.out, runs, setup);
}
