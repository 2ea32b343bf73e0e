/**
 * Weights larger than one storage binding are refused at load with a one-line UserError naming the tensor, its size
 * and the adapter's limit (every kernel binds a weight whole). The shapes are checked before any data is read, so
 * the test weights carry no data. Also: `--f16` refuses values f16 cannot hold.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebGpuOps } from '../../../src/backend/webgpu/webgpu-ops.js';
import { UserError } from '../../../src/util/errors.js';
import type { Weight } from '../../../src/tensor/weight.js';
import { f32ToBf16 } from '../../../src/tensor/dtype.js';
import { userError } from '../../helpers/user-error.js';

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

test('--f16 refuses a matrix with values beyond f16\'s range (they would become infinities), from f32 or bf16', async () => {
  const f16 = await WebGpuOps.create({ f16: true, tensorCores: 'off' });
  try {
    const big = new Float32Array(16).fill(0.5);
    big[5] = 70000;
    userError(() => f16.weight({ name: 'model.layers.3.mlp.down_proj.weight', dtype: 'f32', shape: [4, 4], data: big }),
      /--f16: model\.layers\.3\.mlp\.down_proj\.weight holds 70000 \(element 5\), beyond f16's range/);
    const bits = Uint16Array.from(big, (v) => f32ToBf16(v));
    userError(() => f16.experts({ E: 2, D: 2, F: 2, gate: [bfw(bits.subarray(0, 4)), bfw(bits.subarray(4, 8))],
      up: [bfw(bits.subarray(8, 12)), bfw(bits.subarray(12, 16))], down: [bfw(bits.subarray(8, 12)), bfw(bits.subarray(12, 16))] }, 'layer0'),
    /--f16: layer0\.gate holds 70144 \(element 5\)/);
    // In range: a bf16 matrix becomes f16 (tensor cores multiply f16 only), exactly.
    const ok = f16.weight({ name: 'w', dtype: 'bf16', shape: [2, 2], data: Uint16Array.from([0.5, -3, 1024, 6e-5], (v) => f32ToBf16(v)) });
    assert.equal(ok.dtype, 'f16');
  } finally {
    f16.ctx.destroy();
  }
});

function bfw(data: Uint16Array): Weight {
  return { name: 'x', dtype: 'bf16', shape: [2, 2], data };
}
