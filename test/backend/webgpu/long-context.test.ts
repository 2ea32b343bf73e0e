/**
 * End to end past the fixtures' sizes: a random bf16 Qwen3-MoE checkpoint (2 layers, hidden 64, 16 experts, top-4,
 * 8 heads / 2 KV heads) prefilled with 600 tokens in one forward — T·k = 2400 slots on the grouped GEMM path,
 * attention of a 600-query prefill — then decoded for 4 steps over a 600+ key cache, where decode attention takes
 * the split-K (flash-decoding) path and each step's 4 slots take the grouped GEMV path. WebGPU logits are compared
 * with the CPU CausalLM (the reference implementation) on the same checkpoint.
 * Tolerance 1e-4 absolute on logits of magnitude ~1: bf16 weights are used exactly on both sides, so the only
 * differences are f32 summation orders over 600 keys and widths of 64–128 (measured ≤ 6.3e-6 on lavapipe); a wrong
 * mask, cache row or expert shifts logits by ≥ 1e-1. Expert choices are compared through their effect on the logits only: the
 * random router has no guaranteed top-k margin, so an exact id comparison could fail on a legitimate near-tie.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeRandomCheckpoint, RANDOM_DEFAULTS } from '../../../src/models/random-checkpoint.js';
import { loadModel } from '../../../src/models/load.js';
import { loadDeviceModel } from '../../../src/models/load-device.js';
import { WebGpuOps } from '../../../src/backend/webgpu/webgpu-ops.js';
import { attentionSplitPlan } from '../../../src/backend/webgpu/kernels/attention.js';
import { maxAbsDiff } from '../../helpers/fixtures.js';

let ops: WebGpuOps;
let dir: string;
before(async () => {
  ops = await WebGpuOps.create();
  dir = mkdtempSync(join(tmpdir(), 'switchyard-long-'));
  writeRandomCheckpoint(dir, { ...RANDOM_DEFAULTS, arch: 'qwen3_moe', layers: 2, hidden: 64, ffn: 48, experts: 16, topK: 4, heads: 8, kvHeads: 2, vocab: 300, dtype: 'BF16', seed: 7 });
});
after(() => { ops.ctx.destroy(); rmSync(dir, { recursive: true, force: true }); });

test('600-token prefill + 4 decode steps on WebGPU match the CPU model', async () => {
  const P = 600;
  const prompt = Array.from({ length: P }, (_, i) => (i * 37 + 11) % 300);
  const cpu = loadModel(dir).model;
  const gpu = loadDeviceModel(dir, ops).model;
  const V = 300;
  // The decode steps below must exercise the split-K attention path (8 heads, one query, ≥ 600 keys).
  assert.ok(attentionSplitPlan(1, 8, P + 1, P, null), 'decode attention should take the split-K path');
  const cpuCache = cpu.newCache(1);
  const gpuCache = gpu.newCache(1);
  const c0 = cpu.forward(prompt, 1, cpuCache).logits;
  const g0 = (await gpu.forward(prompt, 1, gpuCache)).logits;
  const worst: number[] = [maxAbsDiff(g0, c0).max];
  let next = [prompt[P - 1]!];
  for (let step = 0; step < 4; step++) {
    const c = cpu.forward(next, 1, cpuCache).logits;
    const g = (await gpu.forward(next, 1, gpuCache)).logits;
    worst.push(maxAbsDiff(g, c).max);
    let arg = 0;
    for (let v = 1; v < V; v++) if (c[v]! > c[arg]!) arg = v;
    next = [arg];
  }
  assert.equal(gpuCache.length, P + 4);
  console.log(`max |logit diff| prefill, decode 1-4: ${worst.map((w) => w.toExponential(2)).join(", ")}`);
  for (const [i, w] of worst.entries()) assert.ok(w <= 1e-4, `${i === 0 ? 'prefill' : `decode step ${i}`}: max |logit diff| ${w.toExponential(3)}`);
  gpuCache.release();
});
