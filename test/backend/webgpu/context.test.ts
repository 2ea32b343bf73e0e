/**
 * The WebGPU runtime's ordering guarantees (src/backend/webgpu/context.ts): per-dispatch parameters in one shared
 * uniform buffer with dynamic offsets (including more dispatches than the buffer holds, which forces a submit
 * mid-recording), cached bind groups reused with different parameters, uploads into a just-released buffer recorded
 * after the dispatch that still reads it, and validation errors surfacing at the next read. All values are small
 * integers, exact in f32, so the checks are exact.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GpuContext, Params } from '../../../src/backend/webgpu/context.js';

let ctx: GpuContext;
before(async () => { ctx = await GpuContext.create(); });
after(() => ctx.destroy());

const ADD = `struct P { n: u32, v: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) { if (g.x < p.n) { a[g.x] = a[g.x] + p.v; } }`;

const COPY = `@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) { if (g.x < arrayLength(&dst)) { dst[g.x] = src[g.x]; } }`;

test('5000 dispatches with distinct parameters (more than one uniform buffer full) each see their own', async () => {
  const a = ctx.upload(new Float32Array(100));
  const N = 5000; // 5000 × 256 B > the 1 MiB parameter buffer: recording submits part-way
  for (let i = 0; i < N; i++) ctx.run(ADD, new Params().u32(100).f32(i), [a], [2]);
  const got = await ctx.read(a, 100);
  const want = (N * (N - 1)) / 2;
  assert.ok(got.every((v) => v === want), `got ${got[0]}, want ${want}`);
  ctx.release(a);
});

test('a released buffer re-uploaded at once is read by the earlier dispatch with its old contents', async () => {
  const src = ctx.upload(Float32Array.from({ length: 64 }, (_, i) => i));
  const dst = ctx.tensor([64]);
  ctx.run(COPY, undefined, [src, dst], [1]);
  ctx.release(src);
  const again = ctx.upload(new Float32Array(64).fill(-1), [64]); // may reuse src's buffer
  const got = await ctx.read(dst, 64);
  assert.deepEqual([...got], Array.from({ length: 64 }, (_, i) => i));
  assert.deepEqual([...(await ctx.read(again, 64))], new Array(64).fill(-1));
  ctx.release(dst, again);
});

test('a dispatch missing a binding fails at the next read with the WebGPU error', async () => {
  const c = await GpuContext.create();
  try {
    const a = c.upload(new Float32Array(4));
    c.run(COPY, undefined, [a], [1]);
    await assert.rejects(c.read(a, 4), /WebGPU error/);
  } finally {
    c.destroy();
  }
});

test('params given to a shader without a uniform (or missing) is refused', () => {
  const a = ctx.tensor([4]);
  assert.throws(() => ctx.run(COPY, new Params().u32(1), [a, a], [1]), /uniform/);
  assert.throws(() => ctx.run(ADD, undefined, [a], [1]), /uniform/);
  ctx.release(a);
});

test('flushIfBusy submits only once enough dispatches wait, and work left in a pass still runs in order', async () => {
  const a = ctx.upload(new Float32Array(64));
  await ctx.sync();
  let submits = 0;
  const queue = ctx.device.queue;
  const submit = queue.submit.bind(queue);
  queue.submit = (cbs: Iterable<GPUCommandBuffer>): undefined => { submits++; return submit(cbs); };
  try {
    for (let i = 0; i < 3; i++) ctx.run(ADD, new Params().u32(64).f32(1), [a], [1]);
    ctx.flushIfBusy(4);
    assert.equal(submits, 0, '3 dispatches < 4: nothing submitted (the pass is only ended)');
    ctx.run(ADD, new Params().u32(64).f32(10), [a], [1]); // recorded in a new pass after the ended one
    ctx.flushIfBusy(4);
    assert.equal(submits, 1, '4 dispatches: submitted');
    ctx.run(ADD, new Params().u32(64).f32(100), [a], [1]);
    ctx.flushIfBusy(4);
    assert.equal(submits, 1, 'the count restarts after a submit');
    const got = await ctx.read(a, 64);
    assert.ok(got.every((v) => v === 113), `got ${got[0]}, want 113`);
  } finally {
    queue.submit = submit;
    ctx.release(a);
  }
});
