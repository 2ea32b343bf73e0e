/**
 * Weights larger than one storage binding are refused at load with a one-line UserError naming the tensor, its size
 * and the adapter's limit (every kernel binds a weight whole). The shapes are checked before any data is read, so
 * the test weights carry no data.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebGpuOps } from '../../../src/backend/webgpu/webgpu-ops.js';
import { UserError } from '../../../src/util/errors.js';
import type { Weight } from '../../../src/tensor/weight.js';

let ops: WebGpuOps;
before(async () => { ops = await WebGpuOps.create(); });
after(() => ops.ctx.destroy());

const fake = (name: string, dtype: 'f32' | 'bf16', shape: number[]): Weight => ({ name, dtype, shape, data: new Float32Array(0) });

test('a matrix over the binding limit is a UserError naming it', () => {
  const rows = Math.floor(ops.ctx.maxBinding / (4 * 512)) + 1; // one row more than fits as f32
  assert.throws(() => ops.weight(fake('model.embed_tokens.weight', 'f32', [rows, 512])),
    (e: unknown) => e instanceof UserError && /model\.embed_tokens\.weight .* GiB, more than the adapter's largest storage binding.*--f16/.test(e.message) && !e.message.includes('\n'));
});

test('a stacked expert set over the limit is refused before upload', () => {
  const F = 1024;
  const D = 512;
  const E = Math.floor(ops.ctx.maxBinding / (2 * F * D)) + 1; // bf16: one expert more than fits
  const w = fake('e', 'bf16', [F, D]);
  const down = fake('d', 'bf16', [D, F]);
  assert.throws(() => ops.experts({ E, D, F, gate: Array(E).fill(w), up: Array(E).fill(w), down: Array(E).fill(down) }, 'model.layers.0.mlp.experts'),
    (e: unknown) => e instanceof UserError && /model\.layers\.0\.mlp\.experts \(stacked gate\/up\/down\) \[\d+, 1024, 512\]/.test(e.message));
});
