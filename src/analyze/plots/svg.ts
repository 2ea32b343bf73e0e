/**
 * Static SVG charts for self-contained HTML reports: line charts and heatmaps, drawn with d3's scales and path
 * generators on the server (no JavaScript needed to view them; every chart is an <svg class="chart"> element).
 */
import { scaleLinear, scaleLog, scaleBand, scaleSequential, type ScaleLinear, type ScaleLogarithmic } from 'd3-scale';
import { line } from 'd3-shape';
import { interpolateViridis, schemeTableau10 } from 'd3-scale-chromatic';
import { extent } from 'd3-array';

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const fmt = (v: number): string => (Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(1) : String(+v.toPrecision(3)));

export interface Series {
  name: string;
  points: readonly (readonly [number, number])[];
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  width?: number;
  height?: number;
  logY?: boolean;
}

export function lineChart(o: LineChartOptions): string {
  const W = o.width ?? 640;
  const H = o.height ?? 360;
  const m = { l: 64, r: 150, t: 36, b: 48 };
  const xs = o.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = o.series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => Number.isFinite(v) && (!o.logY || v > 0));
  const [x0, x1] = extent(xs) as [number | undefined, number | undefined];
  const [y0, y1] = extent(ys) as [number | undefined, number | undefined];
  const x = scaleLinear().domain([x0 ?? 0, x1 === x0 ? (x1 ?? 0) + 1 : (x1 ?? 1)]).range([m.l, W - m.r]);
  const y: ScaleLinear<number, number> | ScaleLogarithmic<number, number> = (o.logY ? scaleLog() : scaleLinear())
    .domain([y0 ?? 0, y1 === y0 ? (y1 ?? 0) + 1 : (y1 ?? 1)]).nice().range([H - m.b, m.t]);
  const path = line<readonly [number, number]>().x((p) => x(p[0])).y((p) => y(p[1]));
  const parts: string[] = [];
  parts.push(`<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(o.title)}">`);
  parts.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-weight="bold">${esc(o.title)}</text>`);
  // Integer data (layers, steps) gets integer ticks only.
  const xTicks = xs.every(Number.isInteger) ? x.ticks(6).filter(Number.isInteger) : x.ticks(6);
  for (const t of xTicks) parts.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${m.t}" y2="${H - m.b}" stroke="#eee"/><text x="${x(t)}" y="${H - m.b + 16}" text-anchor="middle" font-size="11">${fmt(t)}</text>`);
  for (const t of y.ticks(6)) parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y(t)}" y2="${y(t)}" stroke="#eee"/><text x="${m.l - 6}" y="${y(t) + 4}" text-anchor="end" font-size="11">${fmt(t)}</text>`);
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#999"/>`);
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 10}" text-anchor="middle" font-size="12">${esc(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(16 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(o.yLabel)}</text>`);
  o.series.forEach((s, i) => {
    // Ten colours, then the same colours dashed, then dotted: every series stays distinguishable.
    const color = schemeTableau10[i % 10]!;
    const dash = ['', ' stroke-dasharray="7 3"', ' stroke-dasharray="2 2"'][Math.floor(i / 10) % 3]!;
    const pts = s.points.filter((p) => Number.isFinite(p[1]) && (!o.logY || p[1] > 0));
    if (pts.length) parts.push(`<path class="series" d="${path(pts)}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`);
    const ly = m.t + i * 18 + 6;
    parts.push(`<line x1="${W - m.r + 8}" x2="${W - m.r + 26}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="3"${dash}/><text x="${W - m.r + 30}" y="${ly + 4}" font-size="12">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

export interface HeatmapOptions {
  title: string;
  rowLabel: string;
  colLabel: string;
  /** values[r][c] */
  values: readonly (readonly number[])[];
  rowNames?: readonly string[];
  colNames?: readonly string[];
  cell?: number;
  /** Fixed colour domain; default [min, max] of the values. */
  domain?: [number, number];
}

export function heatmap(o: HeatmapOptions): string {
  const R = o.values.length;
  const C = o.values[0]?.length ?? 0;
  const cell = o.cell ?? Math.max(6, Math.min(28, Math.floor(560 / Math.max(C, 1))));
  const m = { l: 70, r: 90, t: 36, b: 44 };
  const W = Math.max(m.l + C * cell + m.r, o.title.length * 8 + 20);
  const H = m.t + R * cell + m.b;
  const flat = o.values.flat().filter(Number.isFinite);
  const [lo, hi] = o.domain ?? [Math.min(...flat, 0), Math.max(...flat, 1e-12)];
  const color = scaleSequential(interpolateViridis).domain([lo, hi === lo ? lo + 1 : hi]);
  const xb = scaleBand<number>().domain([...Array(C).keys()]).range([m.l, m.l + C * cell]);
  const yb = scaleBand<number>().domain([...Array(R).keys()]).range([m.t, m.t + R * cell]);
  const parts: string[] = [];
  parts.push(`<svg class="chart heatmap" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(o.title)}">`);
  parts.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-weight="bold">${esc(o.title)}</text>`);
  o.values.forEach((row, r) => row.forEach((v, c) => {
    parts.push(`<rect class="cell" x="${xb(c)}" y="${yb(r)}" width="${cell}" height="${cell}" fill="${Number.isFinite(v) ? color(v) : '#ccc'}"><title>${esc(o.rowNames?.[r] ?? String(r))}, ${esc(o.colNames?.[c] ?? String(c))}: ${fmt(v)}</title></rect>`);
  }));
  const step = Math.max(1, Math.ceil(12 / cell));
  for (let r = 0; r < R; r += step) parts.push(`<text x="${m.l - 4}" y="${yb(r)! + cell / 2 + 4}" text-anchor="end" font-size="10">${esc(o.rowNames?.[r] ?? String(r))}</text>`);
  for (let c = 0; c < C; c += step) parts.push(`<text x="${xb(c)! + cell / 2}" y="${m.t + R * cell + 12}" text-anchor="middle" font-size="10">${esc(o.colNames?.[c] ?? String(c))}</text>`);
  parts.push(`<text x="${m.l + (C * cell) / 2}" y="${H - 8}" text-anchor="middle" font-size="12">${esc(o.colLabel)}</text>`);
  parts.push(`<text transform="translate(14 ${m.t + (R * cell) / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(o.rowLabel)}</text>`);
  // Colour bar.
  const bx = m.l + C * cell + 20;
  const bh = Math.max(60, R * cell);
  for (let i = 0; i < 20; i++) parts.push(`<rect x="${bx}" y="${m.t + (bh * i) / 20}" width="14" height="${bh / 20 + 0.5}" fill="${color(hi - ((hi - lo) * i) / 19)}"/>`);
  parts.push(`<text x="${bx + 18}" y="${m.t + 10}" font-size="10">${fmt(hi)}</text><text x="${bx + 18}" y="${m.t + bh}" font-size="10">${fmt(lo)}</text>`);
  parts.push('</svg>');
  return parts.join('');
}
