/**
 * The routing-analytics report: every metric of src/analyze/metrics/ computed from a routing trace (and, with a
 * second trace, the per-layer similarity), as JSON-ready numbers and as one self-contained HTML page.
 */
import type { RoutingTrace } from './routing-trace.js';
import { expertLoad, loadFractions, loadImbalance } from './metrics/load.js';
import { meanGateEntropy, loadEntropy, normalisedLoadEntropy } from './metrics/entropy.js';
import { tokenSpecialisation, type Specialisation } from './metrics/specialisation.js';
import { traceAffinities } from './metrics/affinity.js';
import { segmentRoutingBestPerformance, defaultSegmentLengths } from './metrics/srp.js';
import { schGrid, defaultCacheSizes } from './metrics/sch.js';
import { routingSimilarity, type LayerSimilarity } from './metrics/similarity.js';
import { lineChart, heatmap, esc } from './plots/svg.js';
import { page, table, type Section } from './report/html.js';

export interface LayerReport {
  layer: number;
  numExperts: number;
  load: number[];
  loadFraction: number[];
  maxOverMean: number;
  cv: number;
  gateEntropy: number;
  loadEntropy: number;
  normalisedLoadEntropy: number;
  specialisation: Specialisation;
  srp: { segLen: number; srp: number; threshold: number }[];
  /** sch[i][j] = SCH(schSegLens[i], cacheSizes[j]). */
  sch: number[][];
  cacheSizes: number[];
}

export interface RoutingReport {
  model: string;
  text: string;
  tokens: number;
  window?: number;
  schSegLens: number[];
  layers: LayerReport[];
  affinity: { from: number; to: number; matrix: number[][] }[];
  compare?: { text: string; tokens: number; similarity: LayerSimilarity[] };
}

/** Segment lengths of the SCH curves (look-ahead of the cache). */
const SCH_SEG_LENS = [1, 4, 16, 64];

export function buildRoutingReport(tr: RoutingTrace, meta: { model: string; text: string }, other?: { trace: RoutingTrace; text: string }): RoutingReport {
  const T = tr.tokens.length;
  const segLens = defaultSegmentLengths(T);
  const schSegLens = SCH_SEG_LENS.filter((m) => m <= Math.max(1, T));
  const layers = tr.layers.map((l): LayerReport => {
    const imb = loadImbalance(l);
    const cacheSizes = defaultCacheSizes(l);
    return {
      layer: l.layer,
      numExperts: l.numExperts,
      load: expertLoad(l),
      loadFraction: loadFractions(l),
      maxOverMean: imb.maxOverMean,
      cv: imb.cv,
      gateEntropy: meanGateEntropy(l),
      loadEntropy: loadEntropy(l),
      normalisedLoadEntropy: normalisedLoadEntropy(l),
      specialisation: tokenSpecialisation(tr.tokens, l),
      srp: segLens.map((m) => segmentRoutingBestPerformance(l, m)),
      sch: schGrid(l, schSegLens, cacheSizes),
      cacheSizes,
    };
  });
  const rep: RoutingReport = { model: meta.model, text: meta.text, tokens: T, window: tr.window, schSegLens, layers, affinity: traceAffinities(tr) };
  if (other) rep.compare = { text: other.text, tokens: other.trace.tokens.length, similarity: routingSimilarity(tr, other.trace) };
  return rep;
}

const lname = (l: number): string => `layer ${l}`;

export function routingReportHtml(r: RoutingReport): string {
  const sections: Section[] = [];
  const L = r.layers;
  sections.push({
    heading: 'Summary per MoE layer',
    html: table(['layer', 'experts', 'max/mean load', 'CV of load', 'gate entropy (bits)', 'load entropy (bits)', 'load entropy / log₂E', 'token-id top-1 accuracy', 'baseline (global mode)', 'NMI I(id;expert)/H(expert)'],
      L.map((l) => [l.layer, l.numExperts, l.maxOverMean, l.cv, l.gateEntropy, l.loadEntropy, l.normalisedLoadEntropy, l.specialisation.accuracy, l.specialisation.baseline, l.specialisation.nmi])),
  });
  const maxIds = Math.max(0, ...L.map((l) => l.loadFraction.length));
  sections.push({
    heading: 'Expert load',
    html: `<p>Fraction of each layer's routed slots that went to each expert (uniform = 1/${maxIds}).</p><div class="charts">` + heatmap({
      title: 'Load fraction (layer × expert)', rowLabel: 'layer', colLabel: 'expert',
      values: L.map((l) => Array.from({ length: maxIds }, (_, e) => l.loadFraction[e] ?? NaN)),
      rowNames: L.map((l) => String(l.layer)), colNames: Array.from({ length: maxIds }, (_, e) => String(e)), cell: Math.max(14, Math.min(40, Math.floor(640 / Math.max(1, maxIds)))),
    }) + '</div>',
  });
  sections.push({
    heading: 'Routing entropy',
    html: '<div class="charts">' + lineChart({
      title: 'Entropy per layer', xLabel: 'layer', yLabel: 'bits',
      series: [
        { name: 'gate H / token', points: L.map((l) => [l.layer, l.gateEntropy] as const) },
        { name: 'load H', points: L.map((l) => [l.layer, l.loadEntropy] as const) },
        { name: 'log₂ E (max)', points: L.map((l) => [l.layer, Math.log2(l.loadFraction.length)] as const) },
      ],
    }) + '</div>',
  });
  sections.push({
    heading: 'Token-ID specialisation',
    html: '<p>Accuracy: fraction of tokens whose top-1 expert is the most frequent top-1 expert of their token id; baseline: the same with one global most frequent expert; NMI: I(token id; top-1 expert) / H(top-1 expert).</p><div class="charts">' + lineChart({
      title: 'Specialisation per layer', xLabel: 'layer', yLabel: 'fraction',
      series: [
        { name: 'token-id accuracy', points: L.map((l) => [l.layer, l.specialisation.accuracy] as const) },
        { name: 'global baseline', points: L.map((l) => [l.layer, l.specialisation.baseline] as const) },
        { name: 'NMI', points: L.map((l) => [l.layer, l.specialisation.nmi] as const) },
      ],
    }) + '</div>',
  });
  sections.push({
    heading: 'Inter-layer expert affinity',
    html: '<p>P(expert j at the next MoE layer | expert i at this layer), counting every pair of slots of a token.</p><div class="charts">' + r.affinity.map((a) => heatmap({
      title: `P(layer ${a.to} expert | layer ${a.from} expert)`, rowLabel: `layer ${a.from} expert`, colLabel: `layer ${a.to} expert`,
      values: a.matrix, domain: [0, 1], cell: Math.max(10, Math.min(28, Math.floor(320 / Math.max(1, a.matrix[0]?.length ?? 1)))),
    })).join('') + '</div>',
  });
  sections.push({
    heading: 'Local routing consistency (expert offloading)',
    html: '<p>SRP (segment routing best performance, Liang et al. 2025): best F1 of serving every m-token segment with one fixed expert group. SCH (segment cache best hit rate): hit rate of an expert cache that sees the next m tokens.</p><div class="charts">'
      + lineChart({ title: 'SRP vs segment length', xLabel: 'log₂ of segment length m (m = 1, 2, 4, … tokens)', yLabel: 'SRP', width: 560, series: L.map((l) => ({ name: lname(l.layer), points: l.srp.map((s) => [Math.log2(s.segLen), s.srp] as const) })) })
      + r.schSegLens.map((m, i) => lineChart({ title: `SCH vs cache size (look-ahead m = ${m})`, xLabel: 'cache size (experts)', yLabel: 'hit rate', width: 560, series: L.map((l) => ({ name: lname(l.layer), points: l.cacheSizes.map((c, j) => [c, l.sch[i]![j]!] as const) })) })).join('')
      + '</div>',
  });
  if (r.compare) {
    const c = r.compare;
    sections.push({
      heading: 'Routing similarity between the two texts',
      html: `<p>Per layer, between the expert-load distributions of “${esc(r.text)}” and “${esc(c.text)}” (${c.tokens} tokens): 1 − Jensen–Shannon divergence (base 2) and cosine.</p><div class="charts">` + lineChart({
        title: 'Similarity per layer', xLabel: 'layer', yLabel: 'similarity',
        series: [
          { name: '1 − JSD', points: c.similarity.map((s) => [s.layer, s.jsSimilarity] as const) },
          { name: 'cosine', points: c.similarity.map((s) => [s.layer, s.cosine] as const) },
        ],
      }) + '</div>' + table(['layer', '1 − JSD', 'cosine'], c.similarity.map((s) => [s.layer, s.jsSimilarity, s.cosine])),
    });
  }
  const intro = `Model <code>${esc(r.model)}</code>, text <code>${esc(r.text)}</code>: ${r.tokens} tokens${r.window ? ` in windows of ${r.window}` : ''}, ${L.length} MoE layers.`;
  return page('Routing analytics', intro, sections);
}
