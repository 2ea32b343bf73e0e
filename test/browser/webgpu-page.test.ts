/**
 * The browser build end to end: scripts/build-browser.mjs bundles src/browser.ts (and fails if anything Node-only
 * gets in), a tiny static server serves the bundle and a Hugging Face fixture folder, and headless Chromium
 * (Debian's /usr/bin/chromium through playwright-core) imports the bundle in a page, fetches the model with
 * loadModelFromUrl, runs GpuCausalLM.forward on the fixture's input ids on `navigator.gpu`, and hands the logits
 * back to Node, which compares them with the float64 reference.
 *
 * WebGPU in headless Chromium: `--enable-unsafe-webgpu` (Linux has WebGPU behind it) on a secure origin
 * (http://127.0.0.1, not data: or file:). Without a GPU Chromium exposes its SwiftShader Vulkan fallback adapter
 * (Mesa lavapipe is not offered to pages). A missing browser, navigator.gpu or adapter FAILS this test: no skips.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Fixture, maxAbsDiff } from '../helpers/fixtures.js';

/** What the page gets from `import('/dist/browser/switchyard.js')` (type only: nothing of it runs in Node). */
type Bundle = typeof import('../../src/browser.js');

const CHROMIUM = '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../../../', import.meta.url)); // dist/test/browser/ → repository root
const FIXTURE = 'qwen3_moe';
/** Float32 on a GPU (different summation order, SwiftShader's exp/rsqrt) vs a float64 reference: the README's
 *  1e-4 holds for a careful float32 CPU implementation; 1e-3 leaves room for GPU arithmetic while still far below
 *  the fixture's smallest greedy top-2 logit gap (7.5e-2), so a wrong routing or layer cannot pass. */
const TOL = 1e-3;

const PAGE = '<!doctype html><meta charset="utf-8"><title>switchyard webgpu</title><p>switchyard webgpu test page</p>';
const TYPES: Record<string, string> = { '.js': 'text/javascript', '.map': 'application/json', '.json': 'application/json', '.safetensors': 'application/octet-stream' };

let server: Server;
let base = '';
let browser: Browser;
let page: Page;
const fx = new Fixture(FIXTURE);
/** Requests the server answered (path → status), to check what loadModelFromUrl fetched. */
const served: string[] = [];
const pageErrors: string[] = [];

/** Serve `/` (the page), `/dist/browser/<file>` and `/fixture/<file>`; plain file names only, anything else 404. */
function serve(path: string): { status: number; body?: Buffer; type?: string } {
  if (path === '/') return { status: 200, body: Buffer.from(PAGE), type: 'text/html' };
  const m = /^\/(dist\/browser|fixture)\/([\w.-]+)$/.exec(path);
  if (!m || m[2]!.startsWith('.')) return { status: 404 };
  const file = m[1] === 'fixture' ? join(fx.dir, m[2]!) : join(ROOT, 'dist/browser', m[2]!);
  if (!existsSync(file)) return { status: 404 };
  const ext = /\.[a-z]+$/.exec(m[2]!)?.[0] ?? '';
  return { status: 200, body: readFileSync(file), type: TYPES[ext] ?? 'application/octet-stream' };
}

before(async () => {
  // Build the bundle now (esbuild: well under a second) so the page always runs the current sources.
  const b = spawnSync(process.execPath, ['scripts/build-browser.mjs'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(b.status, 0, `scripts/build-browser.mjs failed:\n${b.stdout}${b.stderr}`);

  server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const r = serve(path);
    served.push(`${path} ${r.status}`);
    res.writeHead(r.status, { 'content-type': r.type ?? 'text/plain', 'cache-control': 'no-store' });
    res.end(r.body ?? 'not found');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  // .ci/run installs Debian's chromium; a missing browser is a failure, not a skip.
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is not installed (apt-get install chromium)`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless=new', '--no-sandbox', '--enable-unsafe-webgpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
  await page.goto(`${base}/`);
});

after(async () => {
  await browser?.close();
  await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
});

test('the browser bundle is ESM with no Node-only imports', () => {
  const js = readFileSync(join(ROOT, 'dist/browser/switchyard.js'), 'utf8');
  assert.ok(!/\bfrom\s*["']node:|\brequire\(["']|import\(["']node:/.test(js), 'the bundle imports a node: module');
  assert.ok(!js.includes('node_modules/webgpu/'), 'the bundle contains the webgpu npm package');
  assert.match(js, /^export \{/m);
});

test('navigator.gpu has an adapter and a GpuContext kernel round trip works in the page', { timeout: 60_000 }, async (t) => {
  const r = await page.evaluate(async (url) => {
    if (!navigator.gpu) return { error: 'navigator.gpu is missing (WebGPU disabled?)' };
    const m = (await import(url)) as Bundle;
    const ctx = await m.GpuContext.create();
    try {
      const x = ctx.upload(new Float32Array([1, 2, 3, 4, 5]), [5]);
      const code = `struct P { n: u32, s: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) { if (g.x < p.n) { a[g.x] = a[g.x] * p.s; } }`;
      ctx.run(code, new m.Params().u32(5).f32(3), [x], [1]);
      ctx.run(code, new m.Params().u32(5).f32(10), [x], [1]);
      return { adapter: ctx.adapterName, features: [...ctx.features], out: Array.from(await ctx.read(x)) };
    } finally {
      ctx.destroy();
    }
  }, `${base}/dist/browser/switchyard.js`);
  assert.ok(!('error' in r), `${r.error}; page errors: ${pageErrors.join(' | ')}`);
  t.diagnostic(`adapter: ${r.adapter}; features: ${r.features!.join(', ')}`);
  assert.deepEqual(r.out, [30, 60, 90, 120, 150]);
});

test(`${FIXTURE} fixture in the page on WebGPU: logits within ${TOL} of the float64 reference, greedy tokens = generated_ids`, { timeout: 120_000 }, async (t) => {
  const ids = fx.ints('input_ids');
  const B = fx.meta.batch;
  const S = fx.meta.seq;
  const prompts = Array.from({ length: B }, (_, b) => ids.slice(b * S, b * S + fx.meta.gen_prompt));
  const r = await page.evaluate(async ({ url, folder, ids, B, prompts, gen }) => {
    if (!navigator.gpu) return { error: 'navigator.gpu is missing (WebGPU disabled?)' };
    const m = (await import(url)) as Bundle;
    const t0 = performance.now();
    const { ctx, model, spec } = await m.loadModelFromUrl(folder);
    try {
      const t1 = performance.now();
      const { logits } = await model.forward(ids, B);
      const forwardMs = performance.now() - t1;
      const generated = await m.generateAsync(model, prompts, { maxNewTokens: gen });
      return { adapter: ctx.adapterName, layers: spec.layers.length, logits: Array.from(logits), loadMs: t1 - t0, forwardMs, generated };
    } finally {
      ctx.destroy();
    }
  }, { url: `${base}/dist/browser/switchyard.js`, folder: `${base}/fixture/`, ids, B, prompts, gen: fx.meta.gen_new });
  assert.ok(!('error' in r), `${r.error}; page errors: ${pageErrors.join(' | ')}`);
  t.diagnostic(`${r.adapter}: load ${r.loadMs!.toFixed(0)} ms, forward ${r.forwardMs!.toFixed(0)} ms`);
  assert.equal(r.layers, 2);
  const want = fx.f32('logits');
  assert.equal(r.logits!.length, want.length);
  const { max, at } = maxAbsDiff(r.logits!, want);
  t.diagnostic(`logits max |diff| vs reference: ${max.toExponential(2)}`);
  assert.ok(max <= TOL, `logits: max |diff| ${max.toExponential(3)} at ${at} (got ${r.logits![at]}, want ${want[at]}) exceeds ${TOL}`);
  // Greedy KV-cached generation in the page reproduces transformers' generated_ids.
  const ref = fx.ints('generated_ids');
  const W = fx.meta.gen_prompt + fx.meta.gen_new;
  for (let b = 0; b < B; b++) assert.deepEqual(r.generated![b], ref.slice(b * W, (b + 1) * W), `sequence ${b}`);
  // loadModelFromUrl fetched config.json, probed for the index (404) and fetched model.safetensors — nothing else.
  const fetched = served.filter((s) => s.startsWith('/fixture/')).sort();
  assert.deepEqual(fetched, ['/fixture/config.json 200', '/fixture/model.safetensors 200', '/fixture/model.safetensors.index.json 404']);
});
