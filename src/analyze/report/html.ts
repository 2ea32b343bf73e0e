/** Self-contained HTML pages (inline CSS, inline SVG charts, no external requests). */
import { esc } from '../plots/svg.js';

export interface Section {
  heading: string;
  /** Raw HTML (charts, tables); callers escape their own text. */
  html: string;
}

export function table(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cell = (v: string | number): string => (typeof v === 'number' ? `<td class="num">${Number.isInteger(v) ? v : v.toPrecision(4)}</td>` : `<td>${esc(v)}</td>`);
  return `<table><thead><tr>${headers.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map(cell).join('')}</tr>`).join('')}</tbody></table>`;
}

export function page(title: string, intro: string, sections: readonly Section[]): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px}th{background:#f4f4f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}.charts{display:flex;flex-wrap:wrap;gap:16px}
svg.chart{background:#fff;border:1px solid #eee}
</style></head><body>
<h1>${esc(title)}</h1>
<p>${intro}</p>
${sections.map((s) => `<h2>${esc(s.heading)}</h2>\n${s.html}`).join('\n')}
</body></html>
`;
}
