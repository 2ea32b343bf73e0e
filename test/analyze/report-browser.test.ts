/**
 * The routing-analytics report in a real browser: `switchyard analyze` on the default model and a short text (plus
 * a second text to compare), opened in headless Chromium through playwright-core; every chart must render with a
 * non-empty box and the expected number of heatmap cells and line paths. Skipped when /usr/bin/chromium is absent
 * (CI installs Debian's chromium). Writes a screenshot to $TMPDIR/switchyard-routing-report.png.
 */
import { it, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { analyzeCommand } from '../../src/cli/analyze.js';
import { loadCorpusDocuments } from '../../src/data/corpus.js';

const CHROMIUM = '/usr/bin/chromium';
const dir = mkdtempSync(join(tmpdir(), 'switchyard-report-'));
after(() => rmSync(dir, { recursive: true, force: true }));

it('report.html renders every chart in headless Chromium', async () => {
  // .ci/run installs Debian's chromium; a missing browser is a failure, not a skip.
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is not installed (apt-get install chromium)`);
  const docs = loadCorpusDocuments();
  writeFileSync(join(dir, 'a.txt'), docs[0]!.text.slice(5000, 7000));
  writeFileSync(join(dir, 'b.txt'), docs[1]!.text.slice(5000, 7000));
  const out = join(dir, 'out');
  const { report } = analyzeCommand(undefined, { text: join(dir, 'a.txt'), compare: join(dir, 'b.txt'), out, maxTokens: 300 });
  const json = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as typeof report;
  const L = json.layers.length;
  const E = json.layers[0]!.numExperts;
  assert.equal(L, 4);
  assert.deepEqual(json.schSegLens, [1, 4, 16, 64]);

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const pg = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const requests: string[] = [];
    pg.on('request', (r) => { if (!r.url().startsWith('file:')) requests.push(r.url()); });
    await pg.goto(pathToFileURL(join(out, 'report.html')).href);
    const charts = await pg.$$eval('svg.chart', (els) => els.map((e) => {
      const b = e.getBoundingClientRect();
      return { label: e.getAttribute('aria-label') ?? '', w: b.width, h: b.height, cells: e.querySelectorAll('rect.cell').length, paths: e.querySelectorAll('path.series').length,
        pathBoxes: Array.from(e.querySelectorAll('path.series')).map((p) => { const r = p.getBoundingClientRect(); return r.width + r.height; }) };
    }));
    // load heatmap, entropy, specialisation, L−1 affinities, SRP, 4 SCH charts, similarity.
    assert.equal(charts.length, 1 + 1 + 1 + (L - 1) + 1 + 4 + 1);
    for (const c of charts) {
      assert.ok(c.w > 100 && c.h > 100, `${c.label}: ${c.w}×${c.h}`);
      for (const s of c.pathBoxes) assert.ok(s > 0, `${c.label}: an empty series path`);
    }
    const by = (prefix: string) => charts.filter((c) => c.label.startsWith(prefix));
    assert.equal(by('Load fraction')[0]!.cells, L * E);
    const aff = by('P(layer');
    assert.equal(aff.length, L - 1);
    for (const a of aff) assert.equal(a.cells, E * E);
    assert.equal(by('Entropy per layer')[0]!.paths, 3);
    assert.equal(by('Specialisation per layer')[0]!.paths, 3);
    assert.equal(by('SRP vs segment length')[0]!.paths, L);
    const sch = by('SCH vs cache size');
    assert.equal(sch.length, 4);
    for (const s of sch) assert.equal(s.paths, L);
    assert.equal(by('Similarity per layer')[0]!.paths, 2);
    assert.deepEqual(requests, [], 'the report is self-contained');
    await pg.screenshot({ path: join(tmpdir(), 'switchyard-routing-report.png'), fullPage: true });
  } finally {
    await browser.close();
  }
});
