/** `switchyard compare-routers`: train several routers on the same data, tokens and seed, and report. */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { writeFileAtomic } from '../io/atomic-write.js';
import { ROUTER_PRESETS, routerPreset } from '../train/presets.js';
import { prepareData } from '../train/prepare-data.js';
import { routerComparisonReport, type RouterRun } from '../analyze/router-comparison.js';
import { resolveSettings, runTraining, type TrainCommandOptions } from './train.js';
import { UserError } from '../util/errors.js';

export const DEFAULT_COMPARISON = ['softmax-topk', 'no-balance', 'aux-free', 'expert-choice', 'top-p', 'relu'];

export function compareRoutersCommand(o: TrainCommandOptions & { routers?: string }): void {
  const names = (o.routers ?? DEFAULT_COMPARISON.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new UserError('--routers is empty');
  const settings = resolveSettings({ steps: '150', evalEvery: '25', ...o });
  for (const n of names) routerPreset(n, settings.shape);
  mkdirSync(o.out, { recursive: true });
  const data = prepareData({ textFiles: o.text, tokenizerDir: o.tokenizer, cachePath: join(o.out, 'tokens.safetensors') });
  const runs: RouterRun[] = [];
  for (const router of names) {
    const r = runTraining(join(o.out, router.replace(/[^a-z0-9+-]/gi, '_')), { ...settings, router }, data, { label: router.padEnd(18) });
    runs.push({ router, describe: ROUTER_PRESETS[router]!.describe, history: r.history, finalValLoss: r.finalValLoss, tokensPerSec: r.tokensPerSec, seconds: r.seconds });
    process.stderr.write(`${router}: validation loss ${r.finalValLoss.toFixed(4)}, ${Math.round(r.tokensPerSec)} tokens/s\n`);
  }
  const s = settings.shape;
  const h = settings.hyper;
  const setup = `${names.length} routers, same data (${data.source}), tokens and seed ${h.seed}: ${s.layers} layers, hidden ${s.hidden}, ` +
    `${s.experts} experts (k = ${s.topK} where the router has a k), expert FFN ${s.expertFfn}, vocabulary ${data.vocabSize}; ` +
    `${h.steps} steps of ${h.batchSize}×${h.seqLen} tokens, lr ${h.lr}, validation on ${h.evalBatches} batches.`;
  const { html, json } = routerComparisonReport(runs, setup);
  writeFileAtomic(join(o.out, 'report.html'), html);
  writeFileAtomic(join(o.out, 'report.json'), JSON.stringify(json, null, 1) + '\n');
  process.stderr.write(`report: ${join(o.out, 'report.html')}\n`);
}
