/** `switchyard analyze` and `switchyard generate --trace` through the built command line. */
import { it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateTrace, type RoutingTrace } from '../../src/analyze/routing-trace.js';
import type { RoutingReport } from '../../src/analyze/routing-report.js';

const CLI = join(process.cwd(), 'dist/src/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'switchyard-analyze-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, SWITCHYARD_THREADS: '1' } });

const TEXT = 'It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife. '.repeat(4);

it('analyze (default model): report.html + report.json with every metric, and the trace with --trace', () => {
  writeFileSync(join(dir, 'a.txt'), TEXT);
  const out = join(dir, 'out');
  const r = run('analyze', '--text', join(dir, 'a.txt'), '--out', out, '--window', '32', '--trace');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readdirSync(out).sort(), ['report.html', 'report.json', 'trace.json'], 'no temp files left');
  const rep = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as RoutingReport;
  assert.equal(rep.window, 32);
  assert.equal(rep.layers.length, 4);
  assert.equal(rep.affinity.length, 3);
  for (const l of rep.layers) {
    assert.equal(l.load.reduce((a, b) => a + b, 0), rep.tokens * 2, 'top-2: two slots per token');
    assert.equal(l.srp[0]!.srp, 1, 'SRP at m = 1 is 1');
    assert.equal(l.sch[0]!.at(-1), 1, 'a cache of all experts always hits');
    assert.ok(l.specialisation.accuracy > 0 && l.specialisation.accuracy <= 1);
  }
  assert.equal(rep.compare, undefined);
  const tr = JSON.parse(readFileSync(join(out, 'trace.json'), 'utf8')) as RoutingTrace;
  validateTrace(tr);
  assert.equal(tr.tokens.length, rep.tokens);
  assert.match(readFileSync(join(out, 'report.html'), 'utf8'), /<svg class="chart/);
});

it('analyze --compare of a text with itself: similarity 1 on every layer', () => {
  const a = join(dir, 'a.txt');
  const r = run('analyze', '--text', a, '--compare', a, '--out', join(dir, 'same'));
  assert.equal(r.status, 0, r.stderr);
  const rep = JSON.parse(readFileSync(join(dir, 'same', 'report.json'), 'utf8')) as RoutingReport;
  for (const s of rep.compare!.similarity) { assert.ok(Math.abs(s.jsSimilarity - 1) < 1e-12); assert.ok(Math.abs(s.cosine - 1) < 1e-12); }
});

it('analyze: one-line errors for a missing text file or a folder that is not a model', () => {
  const r = run('analyze', '--text', join(dir, 'missing.txt'), '--out', join(dir, 'x'));
  assert.equal(r.status, 2);
  assert.match(r.stderr, /does not exist/);
  const r2 = run('analyze', dir, '--text', join(dir, 'a.txt'));
  assert.equal(r2.status, 2);
  assert.match(r2.stderr, /not a model folder/);
});

it('generate --trace writes the routing of prompt + continuation', () => {
  const f = join(dir, 'gen.json');
  const r = run('generate', '--prompt', 'It was a truth', '--max-new-tokens', '6', '--no-stop-at-eos', '--trace', f);
  assert.equal(r.status, 0, r.stderr);
  const tr = JSON.parse(readFileSync(f, 'utf8')) as RoutingTrace;
  validateTrace(tr);
  assert.equal(tr.layers.length, 4);
  assert.ok(tr.tokens.length >= 7);
});
