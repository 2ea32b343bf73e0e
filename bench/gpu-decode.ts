/**
 * Single-sequence greedy decoding of a Qwen3-MoE-shaped model with random bf16 weights, on WebGPU (the device graph,
 * `GpuCausalLM`) and on the CPU backend (`CausalLM` with `initCpuBackend()`: WASM SIMD kernels + worker threads) in
 * the same run, on the same checkpoint and the same prompt.
 *
 * Model (Qwen3-30B-A3B's layer shape, fewer layers and a smaller vocabulary so it fits): 3 layers, hidden 2048,
 * 128 experts of FFN width 768, top-8 (normTopK), 32 attention heads / 4 KV heads of head_dim 64 (the random-checkpoint
 * writer ties head_dim to hidden ÷ heads; Qwen3-30B-A3B has head_dim 128), q/k RMS norms, vocabulary 32000, untied
 * lm_head, all matrices bf16: 3.94 GB of weights. It is sized to the CPU backend: the WASM heap (wasm32) holds at
 * most 4 GiB, and weights past it would be streamed through a staging buffer on every use (the bench says so if that
 * happens). `--layers N` changes the layer count. `--quick`: 2 layers, hidden 128, 16 experts of 96, top-4, 4 heads /
 * 2 KV heads (head_dim 32), vocabulary 1000 (runs on lavapipe).
 *
 * The checkpoint is written to a fresh temporary folder (random-checkpoint.ts, bf16) and deleted at the end.
 * Per backend: load time (read + upload; on WebGPU until the uploads have finished), one untimed warm-up generation
 * (16-token prompt, 2 new tokens: compiles the GPU pipelines), then `--runs` (default 3; 1 with --quick) measured
 * generations through the engine's own loops (`generateAsync` for WebGPU, `generate` for the CPU), greedy
 * (temperature 0), prompt of 16 random token ids, 64 new tokens. With t0 the call and t1…t64 the moments each new
 * token is chosen (onToken): prefill ms = t1 − t0 (one forward over the 16 prompt tokens, incl. reading its logits
 * back), decode tok/s = 63 ÷ (t64 − t1) (63 single-token forwards, each with its logits read back and the argmax
 * taken on the host). Medians over the runs are reported; also how many of the 64 tokens both backends chose alike
 * (random weights give near-tied logits, so an early divergence is possible and not an error).
 *
 *   npm run bench:gpu-decode         (after npx tsc -p .; writes bench/results/gpu-decode.json)
 *   node dist/bench/gpu-decode.js --layers 2 --runs 5 --out FILE   (another layer count / run count / results path)
 *   node dist/bench/gpu-decode.js --quick        (tiny model; writes no results file)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tmpdir, cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { writeRandomCheckpoint, type RandomModelShape } from '../src/models/random-checkpoint.js';
import { loadModel } from '../src/models/load.js';
import { Checkpoint, readConfig } from '../src/io/checkpoint.js';
import { specFor } from '../src/models/registry.js';
import { GpuCausalLM } from '../src/models/gpu-causal-lm.js';
import { GpuContext } from '../src/backend/webgpu/context.js';
import { generate, generateAsync, type GenerateOptions } from '../src/infer/generate.js';
import { initCpuBackend } from '../src/backend/cpu/init.js';
import { shutdownWasmBackend, wasmBackendInfo } from '../src/backend/cpu/wasm/index.js';
import { makeRng } from '../src/infer/sampling.js';
import { progress } from '../src/cli/progress.js';
import { median, writeResults, machineInfo } from './stats.js';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const arg = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};

const LAYERS = Number(arg('--layers') ?? (quick ? 2 : 3));
const RUNS = Number(arg('--runs') ?? (quick ? 1 : 3));
if (!Number.isInteger(LAYERS) || LAYERS < 1) throw new Error(`--layers: ${arg('--layers')} is not a positive integer`);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs: ${arg('--runs')} is not a positive integer`);
const SHAPE: RandomModelShape = quick
  ? { arch: 'qwen3_moe', layers: LAYERS, hidden: 128, ffn: 96, experts: 16, topK: 4, heads: 4, kvHeads: 2, vocab: 1000, dtype: 'BF16', seed: 5 }
  : { arch: 'qwen3_moe', layers: LAYERS, hidden: 2048, ffn: 768, experts: 128, topK: 8, heads: 32, kvHeads: 4, vocab: 32000, dtype: 'BF16', seed: 5 };
const PROMPT = 16;
const NEW = 64;
const WARM_NEW = 2;

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Parameter counts of the random Qwen3-MoE checkpoint (random-checkpoint.ts layout), for the printout. */
function sizes(s: RandomModelShape): { total: number; activePerToken: number } {
  const D = s.hidden;
  const hd = D / s.heads;
  const attn = D * s.heads * hd + 2 * D * s.kvHeads * hd + s.heads * hd * D + 2 * hd + 2 * D;
  const expert = 3 * D * s.ffn;
  const layer = attn + s.experts * D + s.experts * expert;
  const active = attn + s.experts * D + s.topK * expert;
  return { total: s.layers * layer + 2 * s.vocab * D + D, activePerToken: s.layers * active + s.vocab * D };
}

interface RunTiming {
  prefillMs: number;
  decodeTokPerSec: number;
  tokens: number[];
}

interface BackendResult {
  backend: string;
  device: string;
  loadMs: number;
  runs: RunTiming[];
  prefillMsMedian: number;
  decodeTokPerSecMedian: number;
  /** Weight bytes read per decoded token ÷ decode time (bf16: 2 bytes a parameter). */
  activeWeightGBps: number;
  extra?: Record<string, unknown>;
}

/** One timed generation: prefill = first token's time, decode = the other NEW − 1 tokens. */
async function timed(run: (opts: GenerateOptions) => Promise<number[][]>, onTick: () => void): Promise<RunTiming> {
  const stamps: number[] = [];
  const t0 = performance.now();
  const out = await run({ maxNewTokens: NEW, temperature: 0, onToken: () => { stamps.push(performance.now()); onTick(); } });
  if (stamps.length !== NEW) throw new Error(`expected ${NEW} new tokens, got ${stamps.length}`);
  return {
    prefillMs: stamps[0]! - t0,
    decodeTokPerSec: (NEW - 1) / ((stamps[NEW - 1]! - stamps[0]!) / 1000),
    tokens: out[0]!.slice(PROMPT),
  };
}

function summarise(backend: string, device: string, loadMs: number, runs: RunTiming[], activeBytes: number, extra?: Record<string, unknown>): BackendResult {
  const tps = median(runs.map((r) => r.decodeTokPerSec));
  return {
    backend, device, loadMs, runs,
    prefillMsMedian: median(runs.map((r) => r.prefillMs)),
    decodeTokPerSecMedian: tps,
    activeWeightGBps: (activeBytes * tps) / 1e9,
    extra,
  };
}

function prompt(V: number): number[] {
  const r = makeRng(11);
  return Array.from({ length: PROMPT }, () => Math.floor(r() * V));
}

async function runGpu(dir: string, ids: number[], activeBytes: number, tick: (s: string) => void): Promise<BackendResult> {
  const ctx = await GpuContext.create();
  try {
    const t0 = performance.now();
    const ck = new Checkpoint(dir);
    let model: GpuCausalLM;
    try {
      model = await GpuCausalLM.load(ctx, specFor(readConfig(dir), new Set(ck.names())), ck, {});
    } finally {
      ck.close();
    }
    const loadMs = performance.now() - t0;
    tick('webgpu loaded');
    const go = (opts: GenerateOptions): Promise<number[][]> => generateAsync(model, [ids], opts);
    await go({ maxNewTokens: WARM_NEW, temperature: 0 });
    tick('webgpu warm-up');
    const runs: RunTiming[] = [];
    for (let r = 0; r < RUNS; r++) runs.push(await timed(go, () => tick('webgpu decode')));
    return summarise('webgpu', ctx.adapterName, loadMs, runs, activeBytes, { software: ctx.isSoftware, features: [...ctx.features], pooledBytes: ctx.pooledBytes });
  } finally {
    ctx.destroy();
  }
}

async function runCpu(dir: string, ids: number[], activeBytes: number, tick: (s: string) => void): Promise<BackendResult> {
  let heapFull = false;
  const onWarning = (w: Error & { code?: string }): void => { if (w.code === 'SWITCHYARD_WASM_HEAP_FULL') heapFull = true; };
  process.on('warning', onWarning);
  const kernel = initCpuBackend();
  try {
    const t0 = performance.now();
    const { model } = loadModel(dir);
    const loadMs = performance.now() - t0;
    tick('cpu loaded');
    // Warnings are emitted on the next tick: let it through before reading the flag.
    await new Promise((r) => setImmediate(r));
    try {
      const go = async (opts: GenerateOptions): Promise<number[][]> => generate(model, [ids], opts);
      await go({ maxNewTokens: WARM_NEW, temperature: 0 });
      tick('cpu warm-up');
      const runs: RunTiming[] = [];
      for (let r = 0; r < RUNS; r++) runs.push(await timed(go, () => tick('cpu decode')));
      const threads = wasmBackendInfo()?.threads ?? 1;
      const cpu = `${cpus()[0]?.model ?? 'cpu'} × ${cpus().length}`;
      return summarise('cpu', `${cpu}, ${kernel}, ${threads} thread(s)`, loadMs, runs, activeBytes, { kernel, threads, wasmHeapFull: heapFull });
    } finally {
      model.close();
    }
  } finally {
    process.off('warning', onWarning);
    await shutdownWasmBackend();
  }
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const s = SHAPE;
  const hd = s.hidden / s.heads;
  const shapeLine = `Qwen3-MoE-shaped, random bf16: ${s.layers} layers, hidden ${s.hidden}, ${s.experts} experts of ${s.ffn} (top-${s.topK}, normTopK), ` +
    `${s.heads} heads / ${s.kvHeads} KV heads, head_dim ${hd}, vocabulary ${s.vocab}`;
  const { total, activePerToken } = sizes(s);
  const activeBytes = activePerToken * 2;
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-gpu-decode-'));
  const gpuSteps = 2 + RUNS * NEW;
  const bar = progress('gpu-decode', 1 + 2 * gpuSteps, 'steps');
  let done = 0;
  const tick = (extra = ''): void => bar.update(++done, extra);
  let gpu: BackendResult | undefined;
  let gpuError: string | undefined;
  let cpu: BackendResult;
  try {
    writeRandomCheckpoint(dir, s);
    tick('checkpoint written');
    const ids = prompt(s.vocab);
    try {
      gpu = await runGpu(dir, ids, activeBytes, tick);
    } catch (e) {
      gpuError = e instanceof Error ? e.message.split('\n')[0] : String(e);
      done = 1 + gpuSteps;
    }
    cpu = await runCpu(dir, ids, activeBytes, tick);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  bar.stop();

  let agree = 0;
  if (gpu) {
    const a = gpu.runs[0]!.tokens;
    const b = cpu.runs[0]!.tokens;
    while (agree < NEW && a[agree] === b[agree]) agree++;
  }
  const fmt = (n: number, d = 1): string => n.toFixed(d);
  const out: string[] = [''];
  out.push(`greedy decoding, 1 sequence, prompt ${PROMPT} tokens, ${NEW} new tokens, median of ${RUNS} run(s) after a warm-up`);
  out.push(`model: ${shapeLine}`);
  const count = (n: number): string => (n >= 1e9 ? `${(n / 1e9).toFixed(3)} B` : `${(n / 1e6).toFixed(2)} M`);
  const bytes = (n: number): string => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : `${(n / 1e6).toFixed(2)} MB`);
  out.push(`       ${count(total)} parameters = ${bytes(total * 2)}; ${count(activePerToken)} read per decoded token ` +
    `(attention, routers, ${s.topK} experts per layer, lm_head) = ${bytes(activeBytes)}`);
  const header = ['backend', 'device', 'load s', 'prefill ms', 'decode tok/s', 'weight GB/s'];
  const rows = [gpu, cpu].filter((r): r is BackendResult => r !== undefined).map((r) => [
    r.backend, r.device, fmt(r.loadMs / 1000, 2), fmt(r.prefillMsMedian, 1), fmt(r.decodeTokPerSecMedian, 2), r.activeWeightGBps.toPrecision(3),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (c: string[]): string => c.map((x, i) => (i < 2 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join('  ');
  out.push(line(header));
  out.push(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) out.push(line(r));
  out.push('weight GB/s = bytes read per decoded token (above) × decode tok/s');
  if (gpu) {
    out.push(`WebGPU ÷ CPU: decode ${fmt(gpu.decodeTokPerSecMedian / cpu.decodeTokPerSecMedian, 2)}×, prefill ${fmt(cpu.prefillMsMedian / gpu.prefillMsMedian, 2)}× ` +
      `(> 1: WebGPU faster); the first ${agree} of ${NEW} generated tokens agree`);
  } else {
    out.push(`WebGPU: not run — ${gpuError}`);
  }
  if (cpu.extra?.['wasmHeapFull']) out.push('CPU: the WASM heap (4 GiB) was full; some weights were streamed through a staging buffer (slower)');
  const wall = (performance.now() - t0) / 1000;
  out.push(`total bench time ${fmt(wall, 1)} s`);
  console.log(out.join('\n'));

  if (quick) {
    console.log('quick run: results file not written');
    return;
  }
  const json = {
    bench: 'gpu-decode',
    date: new Date().toISOString(),
    machine: machineInfo(),
    model: { ...s, headDim: hd, parameters: total, weightBytes: total * 2, activeParametersPerToken: activePerToken, activeBytesPerToken: activeBytes },
    method: {
      prompt: `${PROMPT} random token ids (mulberry32 seed 11)`,
      newTokens: NEW,
      sampling: 'greedy (temperature 0)',
      warmup: `one generation of ${WARM_NEW} new tokens per backend`,
      runs: RUNS,
      prefillMs: 'time from the generate call to the first new token (one forward over the prompt, logits read back)',
      decodeTokPerSec: `${NEW - 1} ÷ time from the first to the last new token (single-token forwards, logits read back each step)`,
      loops: 'generateAsync (WebGPU device graph) / generate (CPU CausalLM)',
    },
    webgpu: gpu ?? { error: gpuError },
    cpu,
    tokensAgreeing: gpu ? agree : undefined,
    decodeSpeedup: gpu ? gpu.decodeTokPerSecMedian / cpu.decodeTokPerSecMedian : undefined,
    prefillSpeedup: gpu ? cpu.prefillMsMedian / gpu.prefillMsMedian : undefined,
    totalSeconds: wall,
  };
  writeResults(arg('--out') ?? join(ROOT, 'bench', 'results', 'gpu-decode.json'), json);
}

await main();
process.exit(0);
