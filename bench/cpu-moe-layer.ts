/**
 * One MoE layer on the CPU (WASM SIMD kernels + worker threads), with random bf16 weights:
 * router linear → softmax top-k → dispatch → per-expert gate/up/down GEMMs over the expert's tokens → combine.
 * Shapes: Mixtral-8x7B (D 4096, F 14336, E 8, k 2) and OLMoE (D 2048, F 1024, E 64, k 8), T = 1, 8, 64 tokens.
 *
 * Reported per case: median ms per layer (after warm-up), tokens/s, and GB/s of weights actually read (distinct
 * experts touched × bytes per expert + router, divided by that run's time; median over runs). Each run uses a fresh
 * input, so runs touch different experts and a cache-resident expert set cannot inflate the numbers.
 * The machine's copy bandwidth is measured in the same process: TypedArray.set of 256 MiB between two buffers, on
 * one thread and split over as many threads as the kernels use, reported both as read+write bytes/s (2 × 256 MiB
 * per copy) and as read bytes/s (256 MiB per copy). The T = 1 target is weight reads ≥ 50 % of the larger
 * read+write copy bandwidth (the strictest reading).
 * The plain TS kernel (the fallback) is run once at T = 1 for comparison.
 *
 *   npm run bench:cpu-moe-layer            (after npx tsc -p .; writes bench/results/cpu-moe-layer.json)
 *   SWITCHYARD_THREADS=1 npm run bench:cpu-moe-layer   (single thread)
 *   node dist/bench/cpu-moe-layer.js --quick            (small shapes, a smoke run; writes no results file)
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus, totalmem } from 'node:os';
import { Worker } from 'node:worker_threads';
import {
  freeWeightData, initWasmBackend, shutdownWasmBackend, wasmBackendInfo, wasmBackendReady, wasmBackendUnavailableReason, wasmLinear,
} from '../src/backend/cpu/wasm/index.js';
import { allocWeightData } from '../src/backend/cpu/weight-store.js';
import { linear, linearKernelName, setLinearKernel } from '../src/backend/cpu/linear.js';
import { SoftmaxTopKRouter } from '../src/moe/routers/softmax-topk.js';
import { dispatch } from '../src/moe/dispatch.js';
import { runExperts, type ExpertWeights } from '../src/moe/experts.js';
import type { Weight } from '../src/tensor/weight.js';
import { progress } from '../src/cli/progress.js';
import { median, randomInput, writeResults } from './stats.js';
import type { MoeLayerShape } from './moe-shape.js';

type Shape = MoeLayerShape;

const quick = process.argv.includes('--quick');
const SHAPES: Shape[] = quick
  ? [{ name: 'mini-8x', D: 512, F: 1792, E: 8, k: 2, normTopK: true }, { name: 'mini-64x', D: 256, F: 128, E: 64, k: 8, normTopK: false }]
  : [{ name: 'Mixtral-8x7B', D: 4096, F: 14336, E: 8, k: 2, normTopK: true }, { name: 'OLMoE', D: 2048, F: 1024, E: 64, k: 8, normTopK: false }];
const TOKENS = [1, 8, 64];
/** Measured runs per T (after WARMUP runs); fewer for the long T = 64 layers. */
const RUNS: Record<number, number> = { 1: 15, 8: 9, 64: 5 };
const WARMUP = 2;
const COPY_BYTES = 256 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------------------------

/** xorshift32 stream of bf16 weights: random sign, exponent 2^-9 … 2^-6, random 7-bit mantissa (never NaN/Inf). */
function randomBf16Weight(name: string, rows: number, cols: number, seed: number): Weight {
  const data = allocWeightData('bf16', rows * cols) as Uint16Array;
  const n32 = data.length >>> 1;
  const u32 = new Uint32Array(data.buffer, data.byteOffset, n32);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n32; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    // Two bf16 per word: keep sign + mantissa bits (0x807f each half), force exponent 118..121 from two random bits.
    const e0 = 118 + ((s >>> 7) & 3);
    const e1 = 118 + ((s >>> 23) & 3);
    u32[i] = (s & 0x807f807f) | (e0 << 7) | (e1 << 23);
  }
  if (data.length & 1) data[data.length - 1] = 0x3c00;
  return { name, dtype: 'bf16', shape: [rows, cols], data };
}

interface Layer {
  shape: Shape;
  router: Weight;
  experts: ExpertWeights[];
  expertBytes: number;
  routerBytes: number;
}

function buildLayer(sh: Shape): Layer {
  const router = randomBf16Weight('router', sh.E, sh.D, 1);
  const experts: ExpertWeights[] = [];
  for (let e = 0; e < sh.E; e++) {
    experts.push({
      gate: randomBf16Weight(`e${e}.gate`, sh.F, sh.D, 100 + 3 * e),
      up: randomBf16Weight(`e${e}.up`, sh.F, sh.D, 101 + 3 * e),
      down: randomBf16Weight(`e${e}.down`, sh.D, sh.F, 102 + 3 * e),
    });
  }
  return { shape: sh, router, experts, expertBytes: 3 * sh.D * sh.F * 2, routerBytes: sh.E * sh.D * 2 };
}

function freeLayer(l: Layer): void {
  for (const w of [l.router, ...l.experts.flatMap((e) => [e.gate, e.up, e.down])]) freeWeightData(w.data);
}

/** One forward of the layer; returns the number of distinct experts that received tokens. */
function forward(l: Layer, router: SoftmaxTopKRouter, x: Float32Array, T: number): number {
  const { D } = l.shape;
  const routing = router.route(linear(x, T, D, l.router), T);
  const d = dispatch(routing);
  const out = new Float32Array(T * D);
  runExperts(x, D, routing, d, (e) => l.experts[e]!, { act: 'silu' }, out);
  let touched = 0;
  for (let e = 0; e < routing.E; e++) if (d.counts[e]! > 0) touched++;
  return touched;
}

/**
 * Copy bandwidth: TypedArray.set of 256 MiB from one buffer into another (both touched first), split into equal
 * parts over `threads` threads (the main thread plus helper workers, as the kernels split their rows), `reps`
 * times. Returns (read + write) GB/s per repetition.
 */
class CopyMeter {
  private readonly src: Uint8Array;
  private readonly dst: Uint8Array;
  private readonly ctl = new Int32Array(new SharedArrayBuffer(64));
  private readonly workers: Worker[] = [];
  private seq = 0;

  constructor(readonly threads: number) {
    this.src = new Uint8Array(new SharedArrayBuffer(COPY_BYTES)).fill(1);
    this.dst = new Uint8Array(new SharedArrayBuffer(COPY_BYTES)).fill(2);
    const code = `
      const { workerData } = require('node:worker_threads');
      const { src, dst, ctl, part, parts } = workerData;
      const a = new Uint8Array(src), b = new Uint8Array(dst), c = new Int32Array(ctl);
      const lo = Math.floor(a.length * part / parts), hi = Math.floor(a.length * (part + 1) / parts);
      let seen = 0;
      for (;;) {
        while (Atomics.load(c, 0) === seen) Atomics.wait(c, 0, seen);
        seen = Atomics.load(c, 0);
        if (seen < 0) break;
        b.set(a.subarray(lo, hi), lo);
        Atomics.add(c, 1, 1);
        Atomics.notify(c, 1);
      }`;
    for (let p = 1; p < threads; p++) {
      const w = new Worker(code, { eval: true, workerData: { src: this.src.buffer, dst: this.dst.buffer, ctl: this.ctl.buffer, part: p, parts: threads } });
      w.unref();
      this.workers.push(w);
    }
  }

  measure(reps: number): number[] {
    const out: number[] = [];
    const hi = Math.floor(COPY_BYTES / this.threads);
    for (let i = 0; i < reps; i++) {
      Atomics.store(this.ctl, 1, 0);
      const t0 = performance.now();
      this.seq++;
      Atomics.store(this.ctl, 0, this.seq);
      Atomics.notify(this.ctl, 0);
      this.dst.set(this.src.subarray(0, hi), 0);
      let d: number;
      while ((d = Atomics.load(this.ctl, 1)) < this.workers.length) Atomics.wait(this.ctl, 1, d);
      const s = (performance.now() - t0) / 1000;
      if (i > 0 || this.workers.length === 0) out.push((2 * COPY_BYTES) / s / 1e9); // first rep wakes the workers
    }
    return out;
  }

  close(): void {
    Atomics.store(this.ctl, 0, -1);
    Atomics.notify(this.ctl, 0);
  }
}

interface CaseResult {
  model: string;
  D: number;
  F: number;
  E: number;
  k: number;
  T: number;
  kernel: string;
  threads: number;
  runs: number;
  msMedian: number;
  msMin: number;
  msMax: number;
  tokensPerSec: number;
  expertsTouchedMedian: number;
  weightBytesReadMedian: number;
  weightGBpsMedian: number;
  /** weightGBpsMedian ÷ copy bandwidth (read+write), measured in this run. */
  fractionOfCopyReadWrite: number;
  /** weightGBpsMedian ÷ copy bandwidth counted as bytes read only. */
  fractionOfCopyRead: number;
}

function runCase(l: Layer, T: number, runs: number, warmup: number, kernel: string, copyRW: number, tick: () => void): CaseResult {
  const sh = l.shape;
  const router = new SoftmaxTopKRouter(sh.E, sh.k, sh.normTopK);
  const ms: number[] = [];
  const gbps: number[] = [];
  const touchedAll: number[] = [];
  const bytesAll: number[] = [];
  for (let i = 0; i < warmup + runs; i++) {
    const x = randomInput(T * sh.D, 1000 * T + i + (kernel === 'ts' ? 7777 : 0));
    const t0 = performance.now();
    const touched = forward(l, router, x, T);
    const dt = performance.now() - t0;
    tick();
    if (i < warmup) continue;
    const bytes = touched * l.expertBytes + l.routerBytes;
    ms.push(dt);
    gbps.push(bytes / (dt / 1000) / 1e9);
    touchedAll.push(touched);
    bytesAll.push(bytes);
  }
  const msMed = median(ms);
  const gb = median(gbps);
  return {
    model: sh.name, D: sh.D, F: sh.F, E: sh.E, k: sh.k, T, kernel,
    threads: kernel === 'ts' ? 1 : wasmBackendInfo()?.threads ?? 1,
    runs,
    msMedian: msMed,
    msMin: Math.min(...ms),
    msMax: Math.max(...ms),
    tokensPerSec: T / (msMed / 1000),
    expertsTouchedMedian: median(touchedAll),
    weightBytesReadMedian: median(bytesAll),
    weightGBpsMedian: gb,
    fractionOfCopyReadWrite: gb / copyRW,
    fractionOfCopyRead: gb / (copyRW / 2),
  };
}

/** Kernel alone: one large bf16 linear at T = 1 (the Mixtral down projection's shape), for context. */
function kernelOnly(): { shape: [number, number]; msMedian: number; GBps: number } {
  const N = quick ? 1024 : 4096;
  const K = quick ? 3584 : 14336;
  const w = randomBf16Weight('kernel-only', N, K, 9);
  const x = randomInput(K, 3);
  const out = new Float32Array(N);
  const ms: number[] = [];
  for (let i = 0; i < 25; i++) {
    const t0 = performance.now();
    wasmLinear(x, 1, K, w, N, out);
    if (i >= 5) ms.push(performance.now() - t0);
  }
  freeWeightData(w.data);
  const m = median(ms);
  return { shape: [N, K], msMedian: m, GBps: (N * K * 2) / (m / 1000) / 1e9 };
}

function fmt(n: number, d = 1): string {
  return n.toFixed(d);
}

async function main(): Promise<void> {
  const t0 = performance.now();
  if (!initWasmBackend()) throw new Error(`WASM backend unavailable: ${wasmBackendUnavailableReason()}`);
  await wasmBackendReady();
  const wasmKernel = (x: Float32Array, T: number, K: number, w: Weight, N: number, out: Float32Array): void => wasmLinear(x, T, K, w, N, out);
  const info = wasmBackendInfo()!;
  const threads = info.threads;

  const tsWarmup = quick ? 1 : 0;
  // Ticks: 1 for the copy measurement, then per shape 1 for building it, every run, and the TS runs.
  const totalSteps = 1 + SHAPES.length * (1 + TOKENS.reduce((a, T) => a + RUNS[T]! + WARMUP, 0) + 1 + tsWarmup);
  const bar = progress('cpu-moe-layer', totalSteps, 'steps');
  let done = 0;
  const tick = (extra = ''): void => bar.update(++done, extra);

  // Copy bandwidth, on 1 thread and on as many threads as the kernels use: measured at the start, between models
  // and at the end (shared hosts drift).
  const meter1 = new CopyMeter(1);
  const meterN = threads > 1 ? new CopyMeter(threads) : meter1;
  const copy1: number[] = [];
  const copyN: number[] = [];
  const measureCopies = (reps: number): void => {
    copy1.push(...meter1.measure(reps));
    if (meterN !== meter1) copyN.push(...meterN.measure(reps + 1));
  };
  measureCopies(5);
  tick('copy bandwidth');
  const kOnly = kernelOnly();

  const results: CaseResult[] = [];
  const ts: CaseResult[] = [];
  for (const sh of SHAPES) {
    tick(`building ${sh.name}`);
    const layer = buildLayer(sh);
    const copyNow = median(threads > 1 ? copyN : copy1);
    for (const T of TOKENS) {
      results.push(runCase(layer, T, RUNS[T]!, WARMUP, linearKernelName(), copyNow, () => tick(`${sh.name} T=${T}`)));
    }
    // The plain TS kernel (fallback) at T = 1: one run after one warm-up, on the same weights.
    setLinearKernel(undefined);
    try {
      ts.push(runCase(layer, 1, 1, tsWarmup, 'ts', copyNow, () => tick(`${sh.name} TS T=1`)));
    } finally {
      setLinearKernel(wasmKernel);
    }
    freeLayer(layer);
    measureCopies(3);
  }
  bar.stop();
  meter1.close();
  meterN.close();

  // The target is judged against the larger of the 1-thread and the N-thread copy bandwidth.
  const copy1RW = median(copy1);
  const copyNRW = threads > 1 ? median(copyN) : copy1RW;
  const copyRW = Math.max(copy1RW, copyNRW);
  // Recompute fractions against the whole run's copy median.
  for (const r of [...results, ...ts]) {
    r.fractionOfCopyReadWrite = r.weightGBpsMedian / copyRW;
    r.fractionOfCopyRead = r.weightGBpsMedian / (copyRW / 2);
  }

  const header = ['shape', 'T', 'kernel', 'threads', 'ms/layer', 'tokens/s', 'experts', 'GB read', 'GB/s', '% copy r+w'];
  const rows = [...results, ...ts].map((r) => [
    `${r.model} (D ${r.D}, F ${r.F}, E ${r.E}, k ${r.k})`,
    String(r.T),
    r.kernel,
    String(r.threads),
    `${fmt(r.msMedian, r.msMedian < 10 ? 2 : 1)} [${fmt(r.msMin, 1)}–${fmt(r.msMax, 1)}]`,
    fmt(r.tokensPerSec, r.tokensPerSec < 10 ? 2 : 1),
    String(r.expertsTouchedMedian),
    fmt(r.weightBytesReadMedian / 1e9, 3),
    fmt(r.weightGBpsMedian, 1),
    `${fmt(100 * r.fractionOfCopyReadWrite, 0)} %`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const out: string[] = [];
  out.push('');
  out.push(`CPU MoE layer, random bf16 weights — ${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length}, node ${process.version}, ${threads} thread(s)`);
  out.push(line(header));
  out.push(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) out.push(line(r));
  out.push('');
  const copyLine = (label: string, rw: number[]): string => `copy bandwidth (TypedArray.set of 256 MiB, ${label}): ${fmt(median(rw))} GB/s read+write = ` +
    `${fmt(median(rw) / 2)} GB/s read (median of ${rw.length}; range ${fmt(Math.min(...rw))}–${fmt(Math.max(...rw))} GB/s read+write)`;
  out.push(copyLine('1 thread', copy1));
  if (threads > 1) out.push(copyLine(`${threads} threads`, copyN));
  out.push(`"% copy r+w" = weight GB/s ÷ ${fmt(copyRW)} GB/s, the larger copy read+write figure above`);
  out.push(`kernel alone: bf16 linear [${kOnly.shape.join(' × ')}] at T = 1: ${fmt(kOnly.msMedian, 2)} ms = ${fmt(kOnly.GBps)} GB/s`);
  const t1 = results.filter((r) => r.T === 1);
  const verdicts = t1.map((r) => `${r.model}: ${fmt(r.weightGBpsMedian)} GB/s = ${fmt(100 * r.fractionOfCopyReadWrite, 0)} % of copy read+write ` +
    `(${fmt(100 * r.fractionOfCopyRead, 0)} % of copy read) → ${r.fractionOfCopyReadWrite >= 0.5 ? 'meets' : 'MISSES'} the ≥ 50 % target`);
  out.push('T = 1 target (weights read at ≥ 50 % of copy bandwidth, read+write):');
  for (const v of verdicts) out.push(`  ${v}`);
  const wall = (performance.now() - t0) / 1000;
  out.push(`total bench time ${fmt(wall)} s`);
  console.log(out.join('\n'));

  const json = {
    bench: 'cpu-moe-layer',
    date: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model, cpus: cpus().length, memoryBytes: totalmem(), node: process.version, platform: process.platform, arch: process.arch },
    backend: { kernel: 'wasm-simd', threads, minParallelMacs: info.minParallelMacs },
    method: {
      weights: 'random bf16 (kept compressed; widened in the kernel), one heap allocation per expert projection',
      timing: `median of ${JSON.stringify(RUNS)} runs per T after ${WARMUP} warm-up runs; fresh random input per run`,
      weightBytesRead: 'distinct experts touched × 3·D·F·2 bytes + router E·D·2 bytes, per run',
      copyBandwidth: 'TypedArray.set of 256 MiB between two buffers, on 1 thread and split over the kernel thread count; GB/s counted as read+write (2 × 256 MiB per copy)',
      target: 'T = 1: weightGBps ≥ 0.5 × copy read+write GB/s (the larger of the 1-thread and N-thread figures)',
    },
    copyBandwidth: {
      readWriteGBpsUsedForTarget: copyRW,
      oneThread: { readWriteGBpsMedian: copy1RW, readGBpsMedian: copy1RW / 2, samplesReadWriteGBps: copy1 },
      threads: threads > 1 ? { threads, readWriteGBpsMedian: copyNRW, readGBpsMedian: copyNRW / 2, samplesReadWriteGBps: copyN } : undefined,
    },
    kernelOnly: kOnly,
    results,
    tsPeer: ts,
    targetT1: t1.map((r) => ({ model: r.model, weightGBps: r.weightGBpsMedian, fractionOfCopyReadWrite: r.fractionOfCopyReadWrite, meets: r.fractionOfCopyReadWrite >= 0.5 })),
    totalSeconds: wall,
    quick,
  };
  if (quick) {
    console.log('quick run: results file not written');
  } else {
    writeResults(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results', 'cpu-moe-layer.json'), json);
  }
  await shutdownWasmBackend();
}

await main();
