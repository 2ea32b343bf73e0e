/**
 * The compare-routers report: one self-contained HTML page (table, loss curves, expert-load heatmaps) and its
 * numbers as JSON, from the training histories of several routers trained on the same data, tokens and seed.
 */
import type { TrainHistory } from '../train/trainer.js';
import { lineChart, heatmap, esc } from './plots/svg.js';
import { page, table } from './report/html.js';

export interface RouterRun {
  router: string;
  describe: string;
  history: TrainHistory;
  finalValLoss: number;
  tokensPerSec: number;
  seconds: number;
}

export interface RouterSummary {
  router: string;
  valLoss: number;
  activeExpertsPerToken: number;
  /** max / mean expert load, averaged over MoE layers, over the last steps. */
  loadImbalance: number;
  /** Coefficient of variation of the expert load, averaged over layers. */
  loadCv: number;
  tokensPerSec: number;
  seconds: number;
}

function tail<T>(a: readonly T[], n: number): T[] {
  return a.slice(Math.max(0, a.length - n));
}

export function summarizeRun(r: RouterRun): RouterSummary {
  const last = tail(r.history.train, 20);
  const mean = (f: (m: (typeof last)[number]) => number): number => last.reduce((a, m) => a + f(m), 0) / Math.max(1, last.length);
  const cvs = r.history.load.map((row) => {
    const mu = row.reduce((a, b) => a + b, 0) / row.length;
    const sd = Math.sqrt(row.reduce((a, b) => a + (b - mu) ** 2, 0) / row.length);
    return mu > 0 ? sd / mu : 0;
  });
  return {
    router: r.router,
    valLoss: r.finalValLoss,
    activeExpertsPerToken: mean((m) => m.activeExperts),
    loadImbalance: mean((m) => m.imbalance),
    loadCv: cvs.reduce((a, b) => a + b, 0) / Math.max(1, cvs.length),
    tokensPerSec: r.tokensPerSec,
    seconds: r.seconds,
  };
}

/** Exponential moving average, for readable training-loss curves. */
function smooth(points: [number, number][], alpha = 0.1): [number, number][] {
  let s = points[0]?.[1] ?? 0;
  return points.map(([x, y]) => { s = alpha * y + (1 - alpha) * s; return [x, s]; });
}

export function routerComparisonReport(runs: readonly RouterRun[], setup: string): { html: string; json: unknown } {
  const summaries = runs.map(summarizeRun);
  const rows = summaries.map((s, i) => [s.router, runs[i]!.describe, s.valLoss, s.activeExpertsPerToken, s.loadImbalance, s.loadCv, Math.round(s.tokensPerSec)]);
  const val = lineChart({
    title: 'Validation loss', xLabel: 'step', yLabel: 'cross-entropy (nats/token)',
    series: runs.map((r) => ({ name: r.router, points: r.history.eval.map((e) => [e.step, e.valLoss] as [number, number]) })),
  });
  const trainLoss = lineChart({
    title: 'Training LM loss (EMA 0.1)', xLabel: 'step', yLabel: 'cross-entropy (nats/token)',
    series: runs.map((r) => ({ name: r.router, points: smooth(r.history.train.map((m) => [m.step, m.lm] as [number, number])) })),
  });
  const imb = lineChart({
    title: 'Load imbalance (max / mean expert load)', xLabel: 'step', yLabel: 'max / mean',
    series: runs.map((r) => ({ name: r.router, points: smooth(r.history.train.map((m) => [m.step, m.imbalance] as [number, number])) })),
  });
  const maxLoad = Math.max(...runs.flatMap((r) => r.history.load.flat()), 1e-9);
  const heatmaps = runs.map((r) => heatmap({
    title: r.router, rowLabel: 'MoE layer', colLabel: 'expert',
    values: r.history.load, domain: [0, maxLoad],
  })).join('\n');
  const html = page('Switchyard: router comparison', esc(setup), [
    { heading: 'Results', html: table(['router', 'what it does', 'val loss', 'experts / token', 'load max/mean', 'load CV', 'train tokens/s'], rows) },
    { heading: 'Loss curves', html: `<div class="charts">${val}${trainLoss}</div>` },
    { heading: 'Load balance', html: `<div class="charts">${imb}</div>` },
    { heading: 'Expert load at the end of training: share of routed slots per expert over the last steps (one colour scale for all)', html: `<div class="charts">${heatmaps}</div>` },
  ]);
  return { html, json: { setup, summaries, runs: runs.map((r) => ({ router: r.router, eval: r.history.eval, load: r.history.load })) } };
}
