/** SVG charts: structure, scaling and escaping. */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { lineChart, heatmap, esc } from '../../src/analyze/plots/svg.js';
import { page, table } from '../../src/analyze/report/html.js';

it('lineChart draws one path per series, mapping data extremes to the plot edges', () => {
  const svg = lineChart({ title: 'loss <a&b>', xLabel: 'step', yLabel: 'loss', series: [
    { name: 'a', points: [[0, 4], [10, 2]] }, { name: 'b', points: [[0, 3], [10, 1]] }] });
  assert.equal((svg.match(/class="series"/g) ?? []).length, 2);
  assert.match(svg, /loss &lt;a&amp;b&gt;/);
  // x = 0 maps to the left margin (64), x = 10 to width − right margin (640 − 150 = 490).
  assert.match(svg, /d="M64,[\d.]+L490,[\d.]+"/);
});

it('heatmap has one cell per value, coloured by value', () => {
  const svg = heatmap({ title: 'load', rowLabel: 'layer', colLabel: 'expert', values: [[0, 1, 2], [3, 4, 5]] });
  const cells = svg.match(/class="cell"[^>]*fill="([^"]+)"/g) ?? [];
  assert.equal(cells.length, 6);
  assert.notEqual(cells[0], cells[5], 'min and max get different colours');
});

it('page and table escape text', () => {
  assert.equal(esc(`<"'&>`), '&lt;&quot;&#39;&amp;&gt;');
  const html = page('T<1>', 'intro', [{ heading: 'h&', html: table(['a'], [['<x>'], [1.23456]]) }]);
  assert.match(html, /<title>T&lt;1&gt;<\/title>/);
  assert.match(html, /<td>&lt;x&gt;<\/td>/);
  assert.match(html, /<td class="num">1.235<\/td>/);
});
