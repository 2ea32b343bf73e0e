/**
 * GPU KV cache (src/backend/webgpu/kv-cache.ts): appends and growth by doubling keep the filled rows bit-exact
 * (pure buffer copies, compared with the host-side concatenation), released old buffers can be reused by the pool
 * at once without corrupting the cache, the batched [layer][sequence] container mirrors src/infer/kv-cache.ts, and
 * decode attention straight over the cache buffers matches the CPU (tolerance as in attention.test.ts: 1e-5·max|v|).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GpuContext } from '../../../src/backend/webgpu/context.js';
import { GpuKVCache, GpuLayerKVCache } from '../../../src/backend/webgpu/kv-cache.js';
import { attentionGpu } from '../../../src/backend/webgpu/kernels/attention.js';
import { attention } from '../../../src/backend/cpu/attention.js';
import { KVCache } from '../../../src/infer/kv-cache.js';
import { seededF32 } from '../../helpers/random.js';

let ctx: GpuContext;
before(async () => { ctx = await GpuContext.create(); });
after(() => { ctx.destroy(); });

test('append and grow by doubling keep every row exact', async () => {
  const kW = 6;
  const vW = 5;
  const cache = new GpuLayerKVCache(ctx, kW, vW, 4);
  const hostK: number[] = [];
  const hostV: number[] = [];
  const steps: Array<[rows: number, capacity: number]> = [[3, 4], [1, 4], [7, 16], [1, 16], [20, 32], [0, 32], [1, 64]];
  let seed = 100;
  for (const [S, cap] of steps) {
    // Source tensors with two extra rows: only the first S rows may be appended.
    const k = seededF32((S + 2) * kW, seed++);
    const v = seededF32((S + 2) * vW, seed++);
    const kg = ctx.upload(k, [S + 2, kW]);
    const vg = ctx.upload(v, [S + 2, vW]);
    const oldK = cache.k;
    cache.append(kg, vg, S);
    ctx.release(kg, vg);
    if (cache.k !== oldK) {
      // The old buffers are back in the pool: reuse them at once and scribble over them.
      const junk = ctx.upload(new Float32Array(oldK.buffer.size / 4).fill(7), [oldK.buffer.size / 4]);
      const junk2 = ctx.upload(new Float32Array(oldK.buffer.size / 4).fill(-7), [oldK.buffer.size / 4]);
      ctx.release(junk, junk2);
    }
    hostK.push(...k.subarray(0, S * kW));
    hostV.push(...v.subarray(0, S * vW));
    assert.equal(cache.length, hostK.length / kW);
    assert.equal(cache.capacity, cap);
    assert.deepEqual(cache.k.shape, [cap, kW]);
    assert.deepEqual(cache.v.shape, [cap, vW]);
    assert.deepEqual(await ctx.read(cache.k, cache.length * kW), Float32Array.from(hostK));
    assert.deepEqual(await ctx.read(cache.v, cache.length * vW), Float32Array.from(hostV));
  }
  cache.release();
});

test('GpuKVCache mirrors KVCache: [layer][sequence], length from layer 0 / sequence 0', () => {
  const widths = [{ k: 8, v: 8 }, { k: 4, v: 6 }, { k: 3, v: 1 }];
  const gpu = new GpuKVCache(ctx, widths, 2);
  const cpu = new KVCache(widths, 2);
  assert.equal(gpu.layers.length, cpu.layers.length);
  for (let l = 0; l < widths.length; l++) {
    assert.equal(gpu.layers[l]!.length, 2);
    for (const c of gpu.layers[l]!) {
      assert.equal(c.kWidth, widths[l]!.k);
      assert.equal(c.vWidth, widths[l]!.v);
      assert.equal(c.length, 0);
    }
  }
  assert.equal(gpu.length, 0);
  const k = ctx.tensor([2, 8]);
  for (const c of gpu.layers[0]!) c.append(k, k, 2);
  assert.equal(gpu.length, 2);
  ctx.release(k);
  gpu.release();
  assert.equal(new GpuKVCache(ctx, [], 1).length, 0);
});

test('prefill then decode steps across growth: attention over the cache buffers matches the CPU', async () => {
  const H = 4;
  const KVH = 2;
  const dq = 12;
  const dv = 8;
  const kW = KVH * dq;
  const vW = KVH * dv;
  const gpu = new GpuLayerKVCache(ctx, kW, vW, 8);
  const cpu = new KVCache([{ k: kW, v: vW }], 1).layers[0]![0]!;
  const scale = 1 / Math.sqrt(dq);
  const chunks = [11, 1, 1, 1, 1, 1, 5, 1]; // 11 → capacity 16; 22 → 32
  let seed = 500;
  for (const S of chunks) {
    const start = cpu.length;
    const k = seededF32(S * kW, seed++);
    const v = seededF32(S * vW, seed++);
    const q = seededF32(S * H * dq, seed++);
    cpu.append(k, v, S);
    const kg = ctx.upload(k, [S, kW]);
    const vg = ctx.upload(v, [S, vW]);
    gpu.append(kg, vg, S);
    ctx.release(kg, vg);
    const Tk = gpu.length;
    const want = attention(q, S, H, dq, cpu.k, cpu.v, Tk, KVH, dv, start, { scale, window: 6 });
    const qg = ctx.upload(q, [S, H, dq]);
    const out = attentionGpu(ctx, qg, S, H, dq, gpu.k, gpu.v, Tk, KVH, dv, start, { scale, window: 6 });
    const got = await ctx.read(out);
    ctx.release(qg, out);
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    assert.ok(worst <= 1e-5, `Tk=${Tk}: max |gpu − cpu| = ${worst}`);
  }
  assert.equal(gpu.capacity, 32);
  gpu.release();
});
