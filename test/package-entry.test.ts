/**
 * The package entry points resolve: `switchyard` (dist/src/index.js, what package.json "main"/"exports" name) runs a
 * fixture through both the CPU model and the device graph on the CPU ops with identical logits (same graph, same
 * ops), and `switchyard/browser` names the built bundle.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import * as sy from '../src/index.js';
import { Fixture } from './helpers/fixtures.js';

test('package.json main/exports point at built files', () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { main: string; exports: Record<string, unknown> };
  assert.ok(existsSync(pkg.main), pkg.main);
  const dot = pkg.exports['.'] as { default: string; types: string };
  assert.ok(existsSync(dot.default) && existsSync(dot.types), JSON.stringify(dot));
  assert.ok(existsSync(pkg.exports['./browser'] as string), 'browser bundle');
});

test('the library entry loads and runs a model on the CPU and through the device graph', async () => {
  const fx = new Fixture('qwen3_moe');
  const ids = fx.ints('input_ids');
  const cpu = sy.loadModel(fx.dir).model.forward(ids, fx.meta.batch).logits;
  const dev = (await sy.loadDeviceModel(fx.dir, new sy.CpuOps()).model.forward(ids, fx.meta.batch)).logits;
  assert.deepEqual(dev, cpu);
  assert.ok(sy.supportedModelTypes().includes('qwen3_moe'));
});
