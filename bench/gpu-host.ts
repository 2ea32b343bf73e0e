/**
 * The host (CPU) cost of one WebGPU decode step: what the engine spends recording a single-token forward — kernel
 * wrappers, parameter packing, bind groups, Dawn's command encoding and submits, the logits readback call — with the
 * GPU's own work taken out. It runs the device graph (`GpuCausalLM.forward`, the loop `generateAsync` uses) on Dawn's
 * *null* backend, which validates and encodes every WebGPU call exactly as the Vulkan backend's front end does but
 * executes nothing (logits read back as zeros, so greedy decoding keeps choosing token 0 — harmless here).
 *
 * Why it matters: a decode step records ~20 dispatches per layer. On a fast GPU the host can take longer to record a
 * step than the GPU takes to run it (e.g. a 48-layer Qwen3-30B-A3B-shaped model reads ~6 GB of weights per token,
 * ~2 ms at 2.8 TB/s), and then the host sets the decode speed. Per-layer submits overlap recording with execution,
 * so the slower of the two wins: `host ms/token` is a ceiling on decode speed (`ceiling tok/s`) that no GPU lifts.
 *
 * Model: Qwen3-MoE's decode structure (q/k RMS norms, GQA 4 heads / 2 KV heads, 128 experts top-8, normTopK, untied
 * lm_head) with tiny widths (hidden 128, expert FFN 32, vocabulary 1000, bf16): the dispatches a step records do not
 * depend on the widths. (Dawn's null backend caps device memory near 512 MB: the widths also keep 48 layers' weights and
 * KV cache under it; hence also --steps ≤ 900.) Layer counts: 3 (bench/gpu-decode's model) and 48 (Qwen3-30B-A3B's).
 * Method per layer count: prefill 16 tokens, 16 untimed decode steps, then `--steps` (default 400) timed decode steps
 * in batches of 50; ms/token = median over the batches. Counters per decode step: dispatches, bind groups created
 * (cache misses in GpuContext.run), pool buffers created.
 *
 *   npm run bench:gpu-host            (after npx tsc -p .; writes bench/results/gpu-host.json)
 *   node dist/bench/gpu-host.js --layers 3,48 --steps 400 --out FILE
 *   node dist/bench/gpu-host.js --quick           (3 layers, 100 steps; writes no results file)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cpus, tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { writeRandomCheckpoint, type RandomModelShape } from '../src/models/random-checkpoint.js';
import { Checkpoint, readConfig } from '../src/io/checkpoint.js';
import { specFor } from '../src/models/registry.js';
import { GpuCausalLM } from '../src/models/gpu-causal-lm.js';
import { GpuContext } from '../src/backend/webgpu/context.js';
import { progress } from '../src/cli/progress.js';
import { median, writeResults, machineInfo } from './stats.js';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const arg = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const LAYERS = (arg('--layers') ?? (quick ? '3' : '3,48')).split(',').map(Number);
const STEPS = Number(arg('--steps') ?? (quick ? 100 : 400));
if (LAYERS.some((l) => !Number.isInteger(l) || l < 1)) throw new Error(`--layers: ${arg('--layers')} is not a list of positive integers`);
if (!Number.isInteger(STEPS) || STEPS < 50 || STEPS > 900) throw new Error(`--steps: ${arg('--steps')} must be an integer in [50, 900]`);
const BATCH = 50;
const PROMPT = 16;
const WARM = 16;
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const shapeOf = (layers: number): RandomModelShape => ({
  arch: 'qwen3_moe', layers, hidden: 128, ffn: 32, experts: 128, topK: 8, heads: 4, kvHeads: 2, vocab: 1000, dtype: 'BF16', seed: 3,
});

interface Row {
  layers: number;
  msPerToken: number;
  usPerDispatch: number;
  dispatchesPerToken: number;
  bindGroupsPerToken: number;
  poolBuffersPerToken: number;
  ceilingTokPerSec: number;
  batchesMs: number[];
}

async function measure(ctx: GpuContext, layers: number, tick: () => void): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-gpu-host-'));
  try {
    writeRandomCheckpoint(dir, shapeOf(layers));
    const ck = new Checkpoint(dir);
    let model: GpuCausalLM;
    try {
      model = await GpuCausalLM.load(ctx, specFor(readConfig(dir), new Set(ck.names())), ck, {});
    } finally {
      ck.close();
    }
    const cache = model.newCache(1);
    await model.forward(Array.from({ length: PROMPT }, (_, i) => 3 + i), 1, cache, { lastOnly: true });
    for (let i = 0; i < WARM; i++) await model.forward([5 + i], 1, cache, { lastOnly: true });
    const d0 = ctx.dispatches;
    const b0 = ctx.bindGroupsCreated;
    const p0 = ctx.poolBuffersCreated;
    const batches: number[] = [];
    for (let b = 0; b < STEPS / BATCH; b++) {
      const t0 = performance.now();
      for (let i = 0; i < BATCH; i++) await model.forward([7 + ((b * BATCH + i) % 50)], 1, cache, { lastOnly: true });
      batches.push((performance.now() - t0) / BATCH);
      tick();
    }
    const steps = batches.length * BATCH;
    const ms = median(batches);
    const dispatches = (ctx.dispatches - d0) / steps;
    return {
      layers, msPerToken: ms, usPerDispatch: (ms * 1000) / dispatches, dispatchesPerToken: dispatches,
      bindGroupsPerToken: (ctx.bindGroupsCreated - b0) / steps, poolBuffersPerToken: (ctx.poolBuffersCreated - p0) / steps,
      ceilingTokPerSec: 1000 / ms, batchesMs: batches,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    ctx.trim();
  }
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const ctx = await GpuContext.create({ backend: 'null' });
  const rows: Row[] = [];
  const bar = progress('gpu-host', LAYERS.length * Math.floor(STEPS / BATCH), 'batches');
  let done = 0;
  try {
    for (const layers of LAYERS) rows.push(await measure(ctx, layers, () => bar.update(++done, `${layers} layers`)));
  } finally {
    bar.stop();
    ctx.destroy();
  }
  const s = shapeOf(0);
  const out: string[] = [''];
  out.push(`host cost of one decode step on WebGPU (Dawn null backend: every call recorded, nothing executed), median of ${STEPS / BATCH} batches of ${BATCH} steps`);
  out.push(`model: Qwen3-MoE structure, ${s.experts} experts top-${s.topK}, ${s.heads} heads / ${s.kvHeads} KV heads, bf16, tiny widths (dispatch counts do not depend on them)`);
  out.push(`host: ${cpus()[0]?.model ?? 'cpu'} × ${cpus().length}, node ${process.version}`);
  const header = ['layers', 'host ms/token', 'µs/dispatch', 'dispatches/token', 'bind groups/token', 'pool buffers/token', 'ceiling tok/s'];
  const cells = rows.map((r) => [String(r.layers), r.msPerToken.toFixed(3), r.usPerDispatch.toFixed(2), r.dispatchesPerToken.toFixed(1),
    r.bindGroupsPerToken.toFixed(2), r.poolBuffersPerToken.toFixed(2), r.ceilingTokPerSec.toFixed(0)]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  out.push(header.map((h, i) => h.padStart(widths[i]!)).join('  '));
  out.push(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const c of cells) out.push(c.map((x, i) => x.padStart(widths[i]!)).join('  '));
  out.push('ceiling tok/s = 1000 ÷ host ms/token: the decode speed no GPU can exceed with this host cost');
  const wall = (performance.now() - t0) / 1000;
  out.push(`total bench time ${wall.toFixed(1)} s`);
  console.log(out.join('\n'));
  if (quick) {
    console.log('quick run: results file not written');
    return;
  }
  const json = {
    bench: 'gpu-host',
    date: new Date().toISOString(),
    machine: machineInfo(),
    model: { ...s, layers: LAYERS },
    method: {
      backend: 'Dawn null backend (webgpu npm package, backend=null)',
      prompt: `${PROMPT} tokens, then ${WARM} untimed decode steps`,
      timed: `${STEPS} single-token forwards (GpuCausalLM.forward, lastOnly, logits read back) in batches of ${BATCH}; median batch`,
    },
    rows,
    totalSeconds: wall,
  };
  writeResults(arg('--out') ?? join(ROOT, 'bench', 'results', 'gpu-host.json'), json);
}

await main();
process.exit(0);
