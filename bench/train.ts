/**
 * Training throughput of the default `switchyard train` configuration (DEFAULT_SHAPE, batch 8 × 128 tokens,
 * vocabulary 4096, softmax top-k router) on this machine, plus two other routers for comparison: tokens/s of full
 * optimizer steps (forward + backward + AdamW), median over timed steps after warm-up, with the WASM SIMD kernels
 * (threads as configured) and with the plain TypeScript kernels. Synthetic random tokens: throughput does not depend
 * on the text.
 *
 *   node dist/bench/train.js            (writes bench/results/train.json)
 *   node dist/bench/train.js --quick    (fewer steps, no results file)
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';
import { Trainer, DEFAULT_HYPER } from '../src/train/trainer.js';
import { DEFAULT_SHAPE, modelConfig, routerPreset } from '../src/train/presets.js';
import { initCpuBackend } from '../src/backend/cpu/init.js';
import { setLinearKernel, linearKernelName } from '../src/backend/cpu/linear.js';
import { makeRng } from '../src/infer/sampling.js';
import { progress } from '../src/cli/progress.js';
import { writeResults } from './stats.js';

const quick = process.argv.includes('--quick');
const V = 4096;
const WARMUP = quick ? 1 : 3;
const STEPS = quick ? 2 : 12;

function tokens(n: number, seed: number): Int32Array {
  const r = makeRng(seed);
  return Int32Array.from({ length: n }, () => Math.floor(r() * V));
}

interface Row { router: string; kernel: string; tokensPerSec: number; msPerStep: number; params: number }

function measure(router: string, kernel: 'wasm-simd' | 'ts', tick: () => void): Row {
  if (kernel === 'ts') setLinearKernel(undefined);
  else initCpuBackend();
  const hyper = { ...DEFAULT_HYPER, steps: WARMUP + STEPS, evalEvery: 1e9 };
  const cfg = modelConfig(DEFAULT_SHAPE, routerPreset(router, DEFAULT_SHAPE), V, 0);
  const t = new Trainer(cfg, hyper, { train: tokens(200_000, 1), validation: tokens(10_000, 2) });
  const times: number[] = [];
  for (let s = 0; s < WARMUP + STEPS; s++) {
    const t0 = performance.now();
    t.trainStep();
    if (s >= WARMUP) times.push(performance.now() - t0);
    tick();
  }
  times.sort((a, b) => a - b);
  const ms = times[Math.floor(times.length / 2)]!;
  const params = t.lm.params().reduce((a, p) => a + p.size, 0);
  return { router, kernel: kernel === 'ts' ? 'ts' : linearKernelName(), tokensPerSec: (hyper.batchSize * hyper.seqLen * hyper.accum) / (ms / 1000), msPerStep: ms, params };
}

const cases: [string, 'wasm-simd' | 'ts'][] = [['softmax-topk', 'ts'], ['softmax-topk', 'wasm-simd'], ['aux-free', 'wasm-simd'], ['expert-choice', 'wasm-simd']];
const bar = progress('bench train', cases.length * (WARMUP + STEPS), 'steps');
let done = 0;
const rows = cases.map(([r, k]) => measure(r, k, () => bar.update(++done)));
bar.stop();
const s = DEFAULT_SHAPE;
console.log(`\ndefault config: ${s.layers} layers, hidden ${s.hidden}, ${s.experts} experts top-${s.topK}, expert FFN ${s.expertFfn}, vocabulary ${V}, batch ${DEFAULT_HYPER.batchSize} × ${DEFAULT_HYPER.seqLen}`);
console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; median of ${STEPS} steps after ${WARMUP} warm-up\n`);
console.log(['router'.padEnd(16), 'kernel'.padEnd(10), 'params'.padStart(9), 'ms/step'.padStart(9), 'tokens/s'.padStart(9)].join('  '));
for (const r of rows) console.log([r.router.padEnd(16), r.kernel.padEnd(10), String(r.params).padStart(9), r.msPerStep.toFixed(0).padStart(9), Math.round(r.tokensPerSec).toString().padStart(9)].join('  '));
if (!quick) {
  console.log('');
  writeResults(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results', 'train.json'),
    { date: new Date().toISOString(), machine: { cpus: cpus().length, model: cpus()[0]?.model }, shape: s, batch: DEFAULT_HYPER.batchSize, seq: DEFAULT_HYPER.seqLen, vocab: V, rows }, 1);
}
process.exit(0);
