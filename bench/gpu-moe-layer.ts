/**
 * One MoE layer on WebGPU with random weights, against the PyTorch H100 baseline (../shared/baselines/
 * torch_moe_h100.json): router linear (`linear`, x[T, D] · Wr[E, D]ᵀ) → softmax top-k (`routeGpu`) → the grouped
 * expert FFNs (`moeExpertsGpu`, SiLU-gated, weights stacked [E, F, D] / [E, F, D] / [E, D, F]). Nothing is read back
 * inside a layer. Shapes (the baseline's three): mixtral-8x7b (D 4096, F 14336, E 8, k 2, normTopK), qwen3-30b-a3b
 * (D 2048, F 768, E 128, k 8, normTopK), olmoe-1b-7b (D 2048, F 1024, E 64, k 8, no renormalisation); storage dtypes
 * bf16 and f16 (the router weight too; accumulation is f32 whatever the storage; both run their expert GEMMs on
 * tensor cores once T·k > 64 slots where the adapter has subgroup matrices — coop-gemm.ts: f16 with activations
 * rounded to f16, bf16 with activations split into f16 hi + lo parts, two products, f32-path accuracy — column
 * `kernel`); T = 1, 8, 64, 512, 4096 tokens.
 *
 * Weights: random bits written straight into GPU buffers in 64 MiB chunks from a host xorshift stream (random sign
 * and mantissa, magnitudes 2^-9 … 2^-5, never NaN/Inf) — no f32 copy of the multi-GB expert weights is ever made.
 * Inputs: a pool of up to 8 distinct random x[T, D] (uniform [-1, 1), at most 256 MiB in all), used in turn by
 * successive repetitions, so small-T repetitions route to different experts and cannot keep a fixed expert set in
 * the GPU's L2.
 *
 * Timing: after the pipelines are compiled (two synced repetitions) and one untimed warm-up batch (none with
 * --quick), each batch records N repetitions back to back (submitted in batches of ≥ 48 dispatches as they are
 * recorded, as the decoder does, so host recording overlaps GPU work), then waits once (`await ctx.sync()`);
 * ms/layer = batch wall time ÷ N, N chosen so a batch lasts ≈ 200 ms (50 ms with --quick), median over 7 batches
 * (3 with --quick). Host-side recording cost is therefore included, as in real use.
 *
 * Reported per case (the baseline's definitions, so the columns compare directly): median ms; TFLOP/s =
 * 6·T·k·D·F ÷ time (router FLOPs not counted); experts touched = distinct experts the routing actually chose (read
 * back once per input of the pool, before timing; median over the pool); GB/s = mean over the pool of touched ×
 * 3·D·F·2 bytes ÷ time (expert weights only, like the baseline's weight_bytes); and the baseline's eager_ms and
 * grouped_ms for the same (config, dtype, T) with ratio = baseline_ms ÷ our_ms (> 1: we are faster). Rows whose
 * baseline ran on another device than this adapter are marked `*`.
 * Copy bandwidth is measured in the same run (start and end): copyBufferToBuffer of one 1 GiB buffer into another
 * (capped by the adapter's maxBufferSize; 64 MiB with --quick), counted as read + write bytes (2 × size per copy),
 * timed like the layers. The T = 1 weight-read GB/s is printed as a fraction of 2.8 TB/s (the WebGPU copy bandwidth
 * measured on the H100, ../shared/README.md, also read + write) and of this run's own copy figure.
 *
 * Limits: each stacked expert projection (E·F·D·2 bytes; Mixtral's is 0.94 GB) must fit the adapter's max storage
 * binding and max buffer size (≈ 2 GiB on the H100; 128 MiB on lavapipe, where only --quick shapes run); a shape
 * that does not fit is listed as skipped with the reason, as is any case that fails on the device.
 *
 *   npm run bench:gpu-moe-layer        (after npx tsc -p .; writes bench/results/gpu-moe-layer.json)
 *   node dist/bench/gpu-moe-layer.js --shapes mixtral-8x7b --dtypes bf16 --tokens 1,8
 *                                      (a subset: its rows replace the same rows of the results file)
 *   node dist/bench/gpu-moe-layer.js --baseline PATH   (baseline file elsewhere)
 *   node dist/bench/gpu-moe-layer.js --out FILE        (results elsewhere, e.g. under $OUT on the device machine)
 *   node dist/bench/gpu-moe-layer.js --no-tensor-cores  (f16 and bf16 layers on the f32 tiled kernels even with subgroup matrices)
 *   node dist/bench/gpu-moe-layer.js --coop-tile 64x2   (the tensor-core tile: 64x2 or 128x1; default per fragment)
 *   node dist/bench/gpu-moe-layer.js --moe-path gemv    (force the expert kernels: decode | gemv | gemm | coop)
 *   node dist/bench/gpu-moe-layer.js --quick           (tiny shapes, T = 1, 8, 64; ~1 min on lavapipe; no results file)
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GpuContext, type GpuTensor } from '../src/backend/webgpu/context.js';
import { FLUSH_MIN_DISPATCHES } from '../src/backend/webgpu/webgpu-ops.js';
import type { GpuWeight } from '../src/backend/webgpu/weights.js';
import { linear } from '../src/backend/webgpu/kernels/matmul.js';
import { routeGpu, type GpuRouterSpec } from '../src/backend/webgpu/kernels/router.js';
import { moeExpertKernel, moeExpertsGpu, type GpuExpertSet } from '../src/backend/webgpu/kernels/moe.js';
import { COOP_TILES, defaultCoopTile } from '../src/backend/webgpu/kernels/coop-gemm.js';
import { progress } from '../src/cli/progress.js';
import { median, randomInput, writeResults } from './stats.js';
import type { MoeLayerShape } from './moe-shape.js';

type Shape = MoeLayerShape;

type Dtype = 'bf16' | 'f16';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
/** --no-tensor-cores: f16 and bf16 layers on the f32 tiled kernels even where the adapter has subgroup matrices. */
const noTensorCores = argv.includes('--no-tensor-cores');
const arg = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const list = (name: string): string[] | undefined => arg(name)?.split(',').map((s) => s.trim()).filter((s) => s.length > 0);

const FULL_SHAPES: Shape[] = [
  { name: 'mixtral-8x7b', D: 4096, F: 14336, E: 8, k: 2, normTopK: true },
  { name: 'qwen3-30b-a3b', D: 2048, F: 768, E: 128, k: 8, normTopK: true },
  { name: 'olmoe-1b-7b', D: 2048, F: 1024, E: 64, k: 8, normTopK: false },
];
/** --quick: the same three routing patterns at toy sizes (odd F and D on purpose). */
const QUICK_SHAPES: Shape[] = [
  { name: 'mini-mixtral', D: 256, F: 448, E: 8, k: 2, normTopK: true },
  { name: 'mini-qwen3', D: 128, F: 96, E: 128, k: 8, normTopK: true },
  { name: 'mini-olmoe', D: 160, F: 112, E: 64, k: 8, normTopK: false },
];
const ALL_TOKENS = quick ? [1, 8, 64] : [1, 8, 64, 512, 4096];
const ALL_DTYPES: Dtype[] = ['bf16', 'f16'];

/** --coop-tile 64x2 | 128x1: the tensor-core kernels' tile (bn × subgroup rows), default per fragment shape. */
const coopTileArg = arg('--coop-tile');
const COOP_TILE = coopTileArg === undefined ? undefined : COOP_TILES.find((t) => `${t.bn}x${t.sgm}` === coopTileArg);
if (coopTileArg !== undefined && !COOP_TILE) throw new Error(`--coop-tile: ${coopTileArg} is not one of ${COOP_TILES.map((t) => `${t.bn}x${t.sgm}`).join(', ')}`);
/** --moe-path decode|gemv|gemm|coop: force moeExpertsGpu's expert kernels (default: its own choice per T). */
const MOE_PATHS = ['decode', 'gemv', 'gemm', 'coop'] as const;
const moePathArg = arg('--moe-path');
const MOE_PATH = MOE_PATHS.find((p) => p === moePathArg);
if (moePathArg !== undefined && !MOE_PATH) throw new Error(`--moe-path: ${moePathArg} is not one of ${MOE_PATHS.join(', ')}`);
const shapeSel = list('--shapes');
const tokenSel = list('--tokens');
const dtypeSel = list('--dtypes');
const SHAPES = (quick ? QUICK_SHAPES : FULL_SHAPES).filter((s) => !shapeSel || shapeSel.some((q) => s.name.toLowerCase().startsWith(q.toLowerCase())));
const TOKENS = tokenSel ? tokenSel.map(Number) : ALL_TOKENS;
const DTYPES = (dtypeSel ?? ALL_DTYPES) as Dtype[];
const restricted = shapeSel !== undefined || tokenSel !== undefined || dtypeSel !== undefined;

for (const T of TOKENS) if (!Number.isInteger(T) || T < 1) throw new Error(`--tokens: ${T} is not a positive integer`);
for (const d of DTYPES) if (!ALL_DTYPES.includes(d)) throw new Error(`--dtypes: ${d} is not one of ${ALL_DTYPES.join(', ')}`);
if (SHAPES.length === 0) throw new Error(`--shapes matched none of ${(quick ? QUICK_SHAPES : FULL_SHAPES).map((s) => s.name).join(', ')}`);

const BATCH_MS = quick ? 50 : 200;
const BATCHES = quick ? 3 : 7;
const MAX_REPS = 1000;
const POOL = 8;
const POOL_BYTES = 256 * 1024 * 1024;
const COPY_BYTES = quick ? 64 * 1024 * 1024 : 1024 * 1024 * 1024;
/** The WebGPU copy bandwidth measured on the H100 (../shared/README.md), read + write, GB/s. */
const H100_COPY_GBPS = 2800;

// GPUBufferUsage bits (the globals exist only after the webgpu module is loaded).
const STORAGE = 0x80;
const COPY_SRC = 0x04;
const COPY_DST = 0x08;

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

// ---------------------------------------------------------------------------------------------------------------

/**
 * A [..shape] weight of random 16-bit floats written straight into a GPU buffer, 64 MiB at a time: random sign and
 * mantissa, exponent drawn from four values so |w| ∈ [2^-9, 2^-5) (bf16 exponent field 118…121, f16 6…9).
 */
function randomGpuWeight(ctx: GpuContext, name: string, dtype: Dtype, shape: readonly number[], seed: number): GpuWeight {
  const n = shape.reduce((a, b) => a * b, 1);
  const words = Math.ceil(n / 2);
  const size = Math.max(16, words * 4);
  const buffer = ctx.device.createBuffer({ size, usage: STORAGE | COPY_SRC | COPY_DST, label: name });
  const chunkWords = 16 * 1024 * 1024;
  const chunk = new Uint32Array(Math.min(chunkWords, words));
  let s = (seed * 2654435761) >>> 0 || 1;
  // bf16: sign 0x8000, exponent bits 14..7, mantissa 0x7f; f16: sign 0x8000, exponent bits 14..10, mantissa 0x3ff.
  const keep = dtype === 'bf16' ? 0x807f807f : 0x83ff83ff;
  const shift = dtype === 'bf16' ? 7 : 10;
  const eBase = dtype === 'bf16' ? 118 : 6;
  for (let off = 0; off < words; off += chunkWords) {
    const len = Math.min(chunkWords, words - off);
    for (let i = 0; i < len; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      const e0 = eBase + ((s >>> 7) & 3);
      const e1 = eBase + ((s >>> 23) & 3);
      chunk[i] = ((s & keep) | (e0 << shift) | (e1 << (16 + shift))) >>> 0;
    }
    ctx.device.queue.writeBuffer(buffer, off * 4, chunk, 0, len);
  }
  return { buffer, dtype, shape, name };
}

/**
 * Time `rep` (which records one repetition): two synced repetitions (compilation), one untimed warm-up batch, then
 * `batches` batches of N back-to-back repetitions, submitted as the decoder submits (once ≥ 48 dispatches wait:
 * GpuContext.flushIfBusy — a submit per repetition would add ~30 µs of host time to each, more than a T = 1 layer
 * of the smaller shapes takes on an H100), one sync per batch. Returns ms per repetition of each batch and N.
 */
async function timeReps(ctx: GpuContext, rep: (i: number) => void): Promise<{ ms: number[]; reps: number }> {
  rep(0);
  await ctx.sync();
  let t0 = performance.now();
  rep(1);
  await ctx.sync();
  const one = performance.now() - t0;
  const reps = Math.max(1, Math.min(MAX_REPS, Math.round(BATCH_MS / Math.max(one, 1e-3))));
  const ms: number[] = [];
  for (let b = quick ? 0 : -1; b < BATCHES; b++) {
    t0 = performance.now();
    for (let i = 0; i < reps; i++) {
      rep(i);
      ctx.flushIfBusy(FLUSH_MIN_DISPATCHES);
    }
    await ctx.sync();
    if (b >= 0) ms.push((performance.now() - t0) / reps);
  }
  return { ms, reps };
}

/** copyBufferToBuffer of `bytes` between two buffers, timed like the layers; read + write GB/s per batch. */
async function copyBandwidth(ctx: GpuContext, bytes: number): Promise<number[]> {
  const a = ctx.device.createBuffer({ size: bytes, usage: COPY_SRC | COPY_DST, label: 'copy-a' });
  const b = ctx.device.createBuffer({ size: bytes, usage: COPY_SRC | COPY_DST, label: 'copy-b' });
  try {
    const { ms } = await timeReps(ctx, (i) => (i % 2 ? ctx.copy(b, 0, a, 0, bytes) : ctx.copy(a, 0, b, 0, bytes)));
    return ms.map((m) => (2 * bytes) / (m / 1000) / 1e9);
  } finally {
    ctx.flush();
    a.destroy();
    b.destroy();
  }
}

// ---------------------------------------------------------------------------------------------------------------

interface BaselineRow {
  config: string;
  dtype: string;
  T: number;
  experts_touched: number;
  eager_ms: number;
  grouped_ms: number;
}

interface Baseline {
  file: string;
  device: string;
  torch?: string;
  rows: BaselineRow[];
}

function loadBaseline(): Baseline | undefined {
  const given = arg('--baseline');
  const candidates = given ? [given] : [
    join(ROOT, '..', 'shared', 'baselines', 'torch_moe_h100.json'),
    join(ROOT, 'shared', 'baselines', 'torch_moe_h100.json'),
  ];
  for (const file of candidates) {
    if (!existsSync(file)) continue;
    const j = JSON.parse(readFileSync(file, 'utf8')) as { device: string; torch?: string; rows: BaselineRow[] };
    return { file, device: j.device, torch: j.torch, rows: j.rows };
  }
  if (given) throw new Error(`--baseline ${given}: no such file`);
  return undefined;
}

/** Whether the adapter is the baseline's GPU model (e.g. "H100" in both names). */
function sameDevice(baselineDevice: string, adapter: string): boolean {
  const model = /\b([A-Z]{1,2}\d{2,4}[A-Z]?)\b/.exec(baselineDevice)?.[1];
  return model !== undefined && adapter.toUpperCase().includes(model.toUpperCase());
}

// ---------------------------------------------------------------------------------------------------------------

interface CaseResult {
  model: string;
  D: number;
  F: number;
  E: number;
  k: number;
  normTopK: boolean;
  dtype: Dtype;
  T: number;
  reps: number;
  batches: number;
  msMedian: number;
  msMin: number;
  msMax: number;
  tflops: number;
  expertsTouchedMedian: number;
  /** Mean over the input pool of touched × 3·D·F·2. */
  weightBytesMean: number;
  weightGBps: number;
  baselineEagerMs?: number;
  baselineGroupedMs?: number;
  baselineExpertsTouched?: number;
  /** baseline_ms ÷ ours (> 1: faster than the baseline). */
  ratioVsEager?: number;
  ratioVsGrouped?: number;
  /** The baseline ran on another GPU than this adapter. */
  baselineOtherDevice?: boolean;
  /** weightGBps ÷ this run's copy bandwidth (read + write). */
  fractionOfCopy: number;
  /** weightGBps ÷ 2800 GB/s (the H100 WebGPU copy figure). */
  fractionOfH100Copy: number;
  adapter: string;
  copyGBps: number;
  /** The expert kernels this T took: 'decode' (one token), 'gemv' (small batches), 'coop' (tensor cores) or 'gemm' (f32 tiles). */
  expertKernel: 'decode' | 'gemv' | 'coop' | 'gemm';
  /** The tensor-core tile (bn x subgroup rows) when the adapter has subgroup matrices. */
  coopTile?: string;
}

interface Skipped {
  model: string;
  dtype: Dtype;
  T: number | 'all';
  reason: string;
}

interface Layer {
  shape: Shape;
  dtype: Dtype;
  router: GpuWeight;
  set: GpuExpertSet;
}

function buildLayer(ctx: GpuContext, sh: Shape, dtype: Dtype): Layer {
  const { D, F, E } = sh;
  const seed = dtype === 'bf16' ? 1 : 2;
  return {
    shape: sh,
    dtype,
    router: randomGpuWeight(ctx, `${sh.name}.router`, dtype, [E, D], 10 * seed),
    set: {
      E, D, F,
      gate: randomGpuWeight(ctx, `${sh.name}.gate`, dtype, [E, F, D], 10 * seed + 1),
      up: randomGpuWeight(ctx, `${sh.name}.up`, dtype, [E, F, D], 10 * seed + 2),
      down: randomGpuWeight(ctx, `${sh.name}.down`, dtype, [E, D, F], 10 * seed + 3),
    },
  };
}

function destroyLayer(ctx: GpuContext, l: Layer): void {
  ctx.flush();
  for (const w of [l.router, l.set.gate, l.set.up, l.set.down]) w.buffer.destroy();
}

/** Why the layer's weights cannot live on this adapter, or undefined. */
function weightLimitReason(ctx: GpuContext, sh: Shape): string | undefined {
  const bytes = sh.E * sh.F * sh.D * 2;
  const maxBuf = ctx.device.limits.maxBufferSize;
  const gib = (b: number): string => `${(b / 2 ** 30).toFixed(2)} GiB`;
  if (bytes > ctx.maxBinding) {
    return `a stacked expert projection [${sh.E}, ${sh.F}, ${sh.D}] is ${gib(bytes)}, over this adapter's max storage binding of ${gib(ctx.maxBinding)}`;
  }
  if (bytes > maxBuf) return `a stacked expert projection is ${gib(bytes)}, over this adapter's max buffer size of ${gib(maxBuf)}`;
  return undefined;
}

function routerSpec(sh: Shape): GpuRouterSpec {
  return { kind: 'softmax-topk', normTopK: sh.normTopK };
}

/** One layer: router logits → softmax top-k → grouped experts; every temporary released at once. */
function forward(ctx: GpuContext, l: Layer, x: GpuTensor, T: number): void {
  const sh = l.shape;
  const logits = linear(ctx, x, T, sh.D, l.router);
  const { experts, gates } = routeGpu(ctx, logits, T, sh.E, sh.k, routerSpec(sh));
  const out = moeExpertsGpu(ctx, x, T, experts, gates, sh.k, l.set, { kind: 'silu' }, undefined, { coopTile: COOP_TILE, path: MOE_PATH });
  ctx.release(logits, experts, gates, out);
}

/** Distinct experts chosen for input x (routing read back). */
async function touchedExperts(ctx: GpuContext, l: Layer, x: GpuTensor, T: number): Promise<number> {
  const sh = l.shape;
  const logits = linear(ctx, x, T, sh.D, l.router);
  const { experts, gates } = routeGpu(ctx, logits, T, sh.E, sh.k, routerSpec(sh));
  const ids = await ctx.readI32(experts, T * sh.k);
  ctx.release(logits, experts, gates);
  return new Set(ids).size;
}

async function runCase(ctx: GpuContext, l: Layer, T: number, baseline: Baseline | undefined, copyGBps: number): Promise<CaseResult> {
  const sh = l.shape;
  const nx = Math.max(1, Math.min(POOL, Math.floor(POOL_BYTES / (T * sh.D * 4))));
  const xs: GpuTensor[] = [];
  try {
    for (let i = 0; i < nx; i++) xs.push(ctx.upload(randomInput(T * sh.D, 1000 * T + 17 * i + (l.dtype === 'f16' ? 5 : 0)), [T, sh.D]));
    const touched: number[] = [];
    for (const x of xs) touched.push(await touchedExperts(ctx, l, x, T));
    const expertBytes = 3 * sh.D * sh.F * 2;
    const { ms, reps } = await timeReps(ctx, (i) => forward(ctx, l, xs[i % nx]!, T));
    let bytesSum = 0;
    for (let i = 0; i < reps; i++) bytesSum += touched[i % nx]! * expertBytes;
    const bytesMean = bytesSum / reps;
    const m = median(ms);
    const flops = 6 * T * sh.k * sh.D * sh.F;
    const gbps = bytesMean / (m / 1000) / 1e9;
    const b = baseline?.rows.find((r) => r.config === sh.name && r.dtype === (l.dtype === 'bf16' ? 'bfloat16' : 'float16') && r.T === T);
    return {
      model: sh.name, D: sh.D, F: sh.F, E: sh.E, k: sh.k, normTopK: sh.normTopK, dtype: l.dtype, T,
      reps, batches: ms.length, msMedian: m, msMin: Math.min(...ms), msMax: Math.max(...ms),
      tflops: flops / (m / 1000) / 1e12,
      expertsTouchedMedian: median(touched),
      weightBytesMean: bytesMean,
      weightGBps: gbps,
      baselineEagerMs: b?.eager_ms,
      baselineGroupedMs: b?.grouped_ms,
      baselineExpertsTouched: b?.experts_touched,
      ratioVsEager: b ? b.eager_ms / m : undefined,
      ratioVsGrouped: b ? b.grouped_ms / m : undefined,
      baselineOtherDevice: b && baseline ? !sameDevice(baseline.device, ctx.adapterName) : undefined,
      fractionOfCopy: gbps / copyGBps,
      fractionOfH100Copy: gbps / H100_COPY_GBPS,
      adapter: ctx.adapterName,
      copyGBps,
      expertKernel: moeExpertKernel(ctx, l.set, T, sh.k, MOE_PATH),
      coopTile: ctx.subgroupMatrix ? (({ bn, sgm }) => `${bn}x${sgm}`)(COOP_TILE ?? defaultCoopTile(ctx.subgroupMatrix)) : undefined,
    };
  } finally {
    ctx.release(...xs);
  }
}

// ---------------------------------------------------------------------------------------------------------------

const fmt = (n: number | undefined, d = 1): string => (n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(d));
const fmtMs = (n: number): string => n.toFixed(n < 1 ? 3 : n < 10 ? 2 : 1);
/** About 3 significant digits (TFLOP/s and GB/s span 1e-4 on lavapipe to 1e3 on an H100). */
const fmtSig = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '—' : n >= 100 || n === 0 ? n.toFixed(0) : n.toPrecision(3));

function table(header: string[], rows: string[][], leftCols: number): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < leftCols ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  ').trimEnd(), ...rows.map(line)];
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const baseline = loadBaseline();
  const ctx = await GpuContext.create({ subgroupMatrix: !noTensorCores });
  const limits = ctx.device.limits;
  console.log(`adapter: ${ctx.adapterName}${ctx.isSoftware ? ' (software renderer)' : ''}; features: ${[...ctx.features].join(', ') || 'none'}; ` +
    `max storage binding ${(ctx.maxBinding / 2 ** 20).toFixed(0)} MiB, max buffer ${(limits.maxBufferSize / 2 ** 20).toFixed(0)} MiB`);
  if (!baseline) console.log('baseline file ../shared/baselines/torch_moe_h100.json not found (pass --baseline PATH): no ratios');

  const cases = SHAPES.length * DTYPES.length * TOKENS.length;
  const bar = progress('gpu-moe-layer', 2 + cases, 'steps');
  let done = 0;
  const tick = (extra = ''): void => bar.update(++done, extra);

  const copyBytes = Math.min(COPY_BYTES, Math.floor(limits.maxBufferSize / 4) * 4);
  const copySamples: number[] = [...await copyBandwidth(ctx, copyBytes)];
  tick('copy bandwidth');
  const copyStart = median(copySamples);

  const results: CaseResult[] = [];
  const skipped: Skipped[] = [];
  for (const sh of SHAPES) {
    const why = weightLimitReason(ctx, sh);
    for (const dtype of DTYPES) {
      if (why) {
        skipped.push({ model: sh.name, dtype, T: 'all', reason: why });
        for (const T of TOKENS) tick(`${sh.name} ${dtype} T=${T} skipped`);
        continue;
      }
      ctx.device.pushErrorScope('out-of-memory');
      ctx.device.pushErrorScope('validation');
      const layer = buildLayer(ctx, sh, dtype);
      const verr = await ctx.device.popErrorScope();
      const oom = await ctx.device.popErrorScope();
      if (verr || oom) {
        destroyLayer(ctx, layer);
        skipped.push({ model: sh.name, dtype, T: 'all', reason: `uploading the weights failed: ${(oom ?? verr)!.message.split('\n')[0]}` });
        for (const T of TOKENS) tick(`${sh.name} ${dtype} T=${T} skipped`);
        continue;
      }
      for (const T of TOKENS) {
        try {
          if (T * sh.D * 4 > ctx.maxBinding) throw new Error(`x [${T}, ${sh.D}] f32 exceeds the max storage binding`);
          results.push(await runCase(ctx, layer, T, baseline, copyStart));
        } catch (e) {
          skipped.push({ model: sh.name, dtype, T, reason: e instanceof Error ? e.message.split('\n')[0]! : String(e) });
          ctx.error = undefined; // let the next case run (the error is recorded above)
        }
        tick(`${sh.name} ${dtype} T=${T}`);
      }
      destroyLayer(ctx, layer);
      ctx.trim();
    }
  }
  copySamples.push(...await copyBandwidth(ctx, copyBytes));
  tick('copy bandwidth');
  bar.stop();
  const copyGBps = median(copySamples);
  for (const r of results) {
    r.copyGBps = copyGBps;
    r.fractionOfCopy = r.weightGBps / copyGBps;
  }

  // ---- report
  const out: string[] = [''];
  const otherDevice = results.some((r) => r.baselineOtherDevice);
  out.push(`WebGPU MoE layer (router linear + softmax top-k + grouped SiLU experts), random weights — ${ctx.adapterName}, node ${process.version}`);
  const header = ['shape', 'dtype', 'T', 'kernel', 'ms/layer [min–max]', 'reps', 'TFLOP/s', 'experts', 'GB/s', 'eager ms', '× eager', 'grouped ms', '× grouped', ''];
  const rows = results.map((r) => [
    `${r.model} (D ${r.D}, F ${r.F}, E ${r.E}, k ${r.k})`,
    r.dtype,
    String(r.T),
    r.expertKernel === 'coop' ? `tensor cores ${r.coopTile}` : r.expertKernel,
    `${fmtMs(r.msMedian)} [${fmtMs(r.msMin)}–${fmtMs(r.msMax)}]`,
    `${r.reps}×${r.batches}`,
    fmtSig(r.tflops),
    String(r.expertsTouchedMedian) + (r.baselineExpertsTouched !== undefined && r.baselineExpertsTouched !== r.expertsTouchedMedian ? ` (${r.baselineExpertsTouched})` : ''),
    fmtSig(r.weightGBps),
    r.baselineEagerMs === undefined ? '—' : fmtMs(r.baselineEagerMs),
    fmtSig(r.ratioVsEager),
    r.baselineGroupedMs === undefined ? '—' : fmtMs(r.baselineGroupedMs),
    fmtSig(r.ratioVsGrouped),
    r.baselineOtherDevice ? '*' : '',
  ]);
  out.push(...table(header, rows, 2));
  out.push('');
  out.push(`experts = distinct experts the routing chose (median over the input pool; the baseline's count in parentheses when it differs); ` +
    'GB/s = expert weights touched ÷ time; × = baseline ms ÷ ours (> 1: faster than PyTorch)');
  if (baseline) out.push(`baseline: ${baseline.file} (${baseline.device}, torch ${baseline.torch ?? '?'})`);
  if (otherDevice) out.push(`* baseline is an ${/\bH100\b/.test(baseline?.device ?? '') ? 'H100' : baseline?.device}; this run is on ${ctx.adapterName}`);
  out.push(`copy bandwidth (copyBufferToBuffer of ${(copyBytes / 2 ** 20).toFixed(0)} MiB, read + write): ${fmt(copyGBps, 1)} GB/s ` +
    `(median of ${copySamples.length} batches; ${fmt(Math.min(...copySamples), 1)}–${fmt(Math.max(...copySamples), 1)}); H100 reference ${H100_COPY_GBPS} GB/s`);
  const t1 = results.filter((r) => r.T === 1);
  if (t1.length) {
    out.push('T = 1 expert-weight read bandwidth:');
    for (const r of t1) {
      out.push(`  ${r.model} ${r.dtype}: ${fmtSig(r.weightGBps)} GB/s = ${fmtSig(100 * r.fractionOfH100Copy)} % of 2.8 TB/s (H100 WebGPU copy), ` +
        `${fmtSig(100 * r.fractionOfCopy)} % of this run's copy bandwidth (${fmt(copyGBps, 1)} GB/s)`);
    }
  }
  for (const s of skipped) out.push(`skipped ${s.model} ${s.dtype} T=${s.T}: ${s.reason}`);
  const wall = (performance.now() - t0) / 1000;
  out.push(`total bench time ${fmt(wall, 1)} s`);
  console.log(out.join('\n'));

  const json = {
    bench: 'gpu-moe-layer',
    date: new Date().toISOString(),
    adapter: ctx.adapterName,
    software: ctx.isSoftware,
    features: [...ctx.features],
    limits: { maxStorageBufferBindingSize: ctx.maxBinding, maxBufferSize: limits.maxBufferSize },
    node: process.version,
    baseline: baseline ? { file: baseline.file, device: baseline.device, torch: baseline.torch, sameDeviceAsThisRun: sameDevice(baseline.device, ctx.adapterName) } : undefined,
    method: {
      layer: 'linear(x, router) → routeGpu softmax-topk → moeExpertsGpu (SiLU-gated experts, stacked [E,F,D]/[E,F,D]/[E,D,F])',
      weights: 'random 16-bit floats (router and experts in the row dtype), |w| in [2^-9, 2^-5), written to GPU buffers in 64 MiB chunks',
      inputs: `pool of up to ${POOL} distinct uniform[-1,1) x[T, D] (≤ ${POOL_BYTES / 2 ** 20} MiB), used in turn by successive repetitions`,
      timing: `2 synced compile repetitions, ${quick ? 0 : 1} warm-up batch, then median of ${BATCHES} batches of N back-to-back repetitions ` +
        `(submitted once ≥ ${FLUSH_MIN_DISPATCHES} dispatches wait, one sync per batch; N so a batch lasts ≈ ${BATCH_MS} ms); ms per repetition`,
      tflops: '6·T·k·D·F ÷ time (the baseline\'s flops; router not counted)',
      weightBytes: 'mean over the input pool of distinct experts touched × 3·D·F·2 bytes (the baseline\'s weight_bytes)',
      ratio: 'baseline_ms ÷ our ms for the same (config, dtype, T); > 1 = faster than the baseline',
      copyBandwidth: `copyBufferToBuffer of ${copyBytes} bytes, read + write (2 × size per copy), timed like the layers, at the start and the end`,
      h100CopyGBps: H100_COPY_GBPS,
    },
    copyBandwidth: { bytes: copyBytes, readWriteGBpsMedian: copyGBps, samplesGBps: copySamples },
    selection: { shapes: SHAPES.map((s) => s.name), dtypes: DTYPES, tokens: TOKENS, restricted },
    results,
    skipped,
    targetT1: t1.map((r) => ({ model: r.model, dtype: r.dtype, weightGBps: r.weightGBps, fractionOfH100Copy: r.fractionOfH100Copy, fractionOfCopy: r.fractionOfCopy })),
    totalSeconds: wall,
  };
  ctx.destroy();
  if (quick) {
    console.log('quick run: results file not written');
    return;
  }
  const file = arg('--out') ?? join(ROOT, 'bench', 'results', 'gpu-moe-layer.json');
  if (restricted && existsSync(file)) {
    // A subset run replaces its own rows in the existing results and keeps the others (each row carries its adapter
    // and the copy bandwidth of its run).
    const prev = JSON.parse(readFileSync(file, 'utf8')) as { results?: CaseResult[]; skipped?: Skipped[] };
    const key = (r: { model: string; dtype: string; T: number | 'all' }): string => `${r.model}/${r.dtype}/${r.T}`;
    const mine = new Set([...results, ...skipped].map(key));
    const ran = (r: { model: string; dtype: string }): boolean => SHAPES.some((s) => s.name === r.model) && DTYPES.includes(r.dtype as Dtype);
    json.results = [...(prev.results ?? []).filter((r) => !mine.has(key(r))), ...results];
    json.skipped = [...(prev.skipped ?? []).filter((s) => !mine.has(key(s)) && !(s.T === 'all' && ran(s))), ...skipped];
  }
  writeResults(file, json);
}

await main();
process.exit(0);
