/**
 * Expert offloading on a random-weight Mixtral-shaped bf16 checkpoint (D 1024, F 3584, E 8, top-2, 12 layers:
 * ~2 GB of expert weights; generated once and cached under --dir, default /tmp/switchyard-offload-bench).
 * For budgets of 10 %, 25 % and 50 % of the expert bytes: hit rate and decode tokens/s of each cache policy (LRU,
 * LFU, prefetch = pre-gated LRU), Belady's optimal hit rate on the same access trace (routing is bit-identical
 * across policies, which the bench checks), and the no-cache baseline (read every needed expert each time). The
 * fully resident model (in a child process: the WASM heap cannot hold it beside the offloaded runs) gives the
 * ceiling.
 *
 * Caveats, also written into the results: random routers route near-uniformly (every expert equally likely), which is
 * the worst case for caching; the checkpoint file sits in the OS page cache after it is written (24 GiB RAM), so a
 * "read" is a memcpy from the page cache, not a disk read. Demand reads are synchronous; prefetch reads for layer l+1
 * are issued before layer l's expert GEMMs and performed by a reader thread while they run ('prefetch (reader
 * thread)', forced on: the library default 'auto' uses the thread only with a core to spare beyond the kernel threads);
 * 'prefetch (sync reads)' is the same cache with those reads done synchronously at issue time, for comparison.
 * SWITCHYARD_THREADS=1 npm run bench:offload measures with one kernel thread (a core left for the reader).
 *
 *   npm run bench:offload                  (after npx tsc -p .; writes bench/results/offload.json)
 *   node dist/bench/offload.js --quick     (tiny model, a smoke run; writes no results file)
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { writeRandomCheckpoint, type RandomModelShape } from '../src/models/random-checkpoint.js';
import { loadModel } from '../src/models/load.js';
import type { CausalLM } from '../src/models/causal-lm.js';
import { initCpuBackend } from '../src/backend/cpu/init.js';
import { linearKernelName } from '../src/backend/cpu/linear.js';
import { wasmBackendInfo } from '../src/backend/cpu/wasm/index.js';
import { belady } from '../src/infer/offload/belady.js';
import type { PolicyName } from '../src/infer/offload/policy.js';
import { formatBytes } from '../src/infer/offload/budget.js';
import { progress } from '../src/cli/progress.js';
import { Sampler, makeRng } from '../src/infer/sampling.js';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const arg = (name: string): string | undefined => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : undefined; };
const SHAPE: RandomModelShape = quick
  ? { arch: 'mixtral', layers: 4, hidden: 128, ffn: 256, experts: 8, topK: 2, heads: 4, kvHeads: 2, vocab: 512, dtype: 'BF16', seed: 7 }
  : { arch: 'mixtral', layers: 12, hidden: 1024, ffn: 3584, experts: 8, topK: 2, heads: 8, kvHeads: 2, vocab: 4096, dtype: 'BF16', seed: 7 };
const DIR = arg('--dir') ?? `/tmp/switchyard-offload-bench${quick ? '-quick' : ''}`;
const PROMPT = 4;
const NEW = Number(arg('--tokens') ?? (quick ? 8 : 24));
const FRACTIONS = [0.1, 0.25, 0.5];
const POLICIES: PolicyName[] = ['lru', 'lfu', 'prefetch'];

function ensureCheckpoint(): void {
  const marker = join(DIR, 'bench-shape.json');
  const want = JSON.stringify(SHAPE);
  if (existsSync(marker) && readFileSync(marker, 'utf8') === want && existsSync(join(DIR, 'model.safetensors'))) return;
  let bar: ReturnType<typeof progress> | undefined;
  writeRandomCheckpoint(DIR, SHAPE, (d, t) => (bar ??= progress('writing random checkpoint', t)).update(d));
  bar?.stop();
  writeFileSync(marker, want);
}

function prompt(): number[] {
  const r = makeRng(11);
  return Array.from({ length: PROMPT }, () => Math.floor(r() * SHAPE.vocab));
}

/**
 * Prefill + NEW decode steps, sampling at temperature 1 with a fixed seed (greedy decoding of a random model tends to
 * repeat one token, which repeats the routing and flatters every cache); decode tokens/s and the tokens.
 */
function decode(model: CausalLM, onStep?: () => void): { tokPerSec: number; tokens: number[] } {
  const V = SHAPE.vocab;
  const cache = model.newCache(1);
  const sampler = new Sampler({ temperature: 1, seed: 5 });
  let l = model.forward(prompt(), 1, cache).logits;
  const tokens: number[] = [];
  let t0 = 0;
  for (let s = 0; s < NEW; s++) {
    const best = sampler.next(l, l.length - V, V);
    tokens.push(best);
    if (s === 0) t0 = performance.now();
    l = model.forward([best], 1, cache).logits;
    onStep?.();
  }
  return { tokPerSec: NEW / ((performance.now() - t0) / 1000), tokens };
}

interface Row {
  budgetFraction: number | null;
  budgetBytes: number | null;
  policy: string;
  hitRate: number;
  accesses: number;
  expertReads: number;
  prefetchLoads?: number;
  prefetchHits?: number;
  readMs?: number;
  /** Prefetches read by the reader thread, and main-thread ms blocked waiting for them. */
  asyncLoads?: number;
  waitMs?: number;
  decodeTokPerSec: number;
}

if (argv.includes('--resident')) {
  // Child process: the fully resident model.
  initCpuBackend();
  const { model } = loadModel(DIR);
  const r = decode(model);
  process.stdout.write(JSON.stringify(r) + '\n');
  process.exit(0);
}

ensureCheckpoint();
initCpuBackend();
const probe = loadModel(DIR, { offload: { budgetBytes: 2 ** 50 } }).model;
const total = probe.offload!.totalExpertBytes();
const one = probe.offload!.maxExpertBytes();
probe.close();
console.log(`checkpoint ${DIR}: ${SHAPE.layers} layers × ${SHAPE.experts} experts of ${formatBytes(one)} = ${formatBytes(total)} of expert weights; kernels ${linearKernelName()}, ${cpus().length} cores`);

const runs = 1 + FRACTIONS.length * (POLICIES.length + 1);
const bar = progress('offload bench', runs * NEW, 'steps');
let done = 0;
const tick = (): void => bar.update(++done);

const rows: Row[] = [];
let refTokens: number[] | undefined;
let refTrace: number[] | undefined;
function measure(policy: PolicyName, budgetBytes: number, fraction: number | null, asyncPrefetch: boolean | 'auto' = 'auto'): Row {
  const { model } = loadModel(DIR, { offload: { budgetBytes, policy, asyncPrefetch } });
  const r = decode(model, tick);
  const c = model.offload!;
  const s = c.stats;
  if (refTokens === undefined) { refTokens = r.tokens; refTrace = [...c.trace]; }
  if (r.tokens.join() !== refTokens.join()) throw new Error(`${policy} at ${budgetBytes} bytes generated different tokens`);
  if (c.trace.join() !== refTrace!.join()) throw new Error(`${policy} at ${budgetBytes} bytes saw a different access trace`);
  model.close();
  return {
    budgetFraction: fraction, budgetBytes: fraction === null ? null : budgetBytes, policy: policy !== 'prefetch' ? policy : asyncPrefetch ? 'prefetch (reader thread)' : 'prefetch (sync reads)', hitRate: s.hits / s.accesses, accesses: s.accesses,
    expertReads: s.loads, prefetchLoads: s.prefetchLoads, prefetchHits: s.prefetchHits, readMs: Math.round(s.readMs),
    ...(policy === 'prefetch' ? { asyncLoads: s.asyncLoads, waitMs: Math.round(s.waitMs) } : {}), decodeTokPerSec: r.tokPerSec,
  };
}

rows.push(measure('none', one, null));
for (const f of FRACTIONS) {
  const budgetBytes = Math.max(one, Math.floor((f * total) / one) * one);
  for (const p of POLICIES) rows.push(measure(p, budgetBytes, f, p === 'prefetch' ? true : 'auto'));
  rows.push(measure('prefetch', budgetBytes, f, false));
  const b = belady(refTrace!, budgetBytes / one);
  rows.push({ budgetFraction: f, budgetBytes, policy: 'belady (offline bound)', hitRate: b.hitRate, accesses: b.hits + b.misses, expertReads: b.misses, decodeTokPerSec: NaN });
}
bar.stop();

const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--resident', ...(quick ? ['--quick'] : []), '--dir', DIR, '--tokens', String(NEW)], { encoding: 'utf8' });
let resident: { tokPerSec: number; tokens: number[] } | undefined;
try {
  resident = JSON.parse(child.stdout.trim().split('\n').pop() ?? '') as { tokPerSec: number; tokens: number[] };
  if (resident.tokens.join() !== refTokens!.join()) throw new Error('the resident model generated different tokens than the offloaded ones');
} catch (e) {
  if (e instanceof SyntaxError) console.error(`resident run failed: ${child.stderr}`);
  else throw e;
}
if (resident) rows.unshift({ budgetFraction: 1, budgetBytes: total, policy: 'resident (no offloading)', hitRate: 1, accesses: refTrace!.length, expertReads: 0, decodeTokPerSec: resident.tokPerSec });

const pct = (x: number): string => `${(100 * x).toFixed(1)} %`;
// How concentrated the routing is: per layer, the share of accesses that went to its top-k most used experts
// (k = top-k; uniform routing gives k / E).
const perLayer = new Map<number, Map<number, number>>();
for (const key of refTrace!) {
  const l = Math.floor(key / 65536);
  const m = perLayer.get(l) ?? new Map<number, number>();
  m.set(key % 65536, (m.get(key % 65536) ?? 0) + 1);
  perLayer.set(l, m);
}
let topShare = 0;
for (const m of perLayer.values()) {
  const c = [...m.values()].sort((a, b) => b - a);
  const n = c.reduce((a, b) => a + b, 0);
  topShare += c.slice(0, SHAPE.topK).reduce((a, b) => a + b, 0) / n / perLayer.size;
}
console.log(`routing concentration: a layer's ${SHAPE.topK} most used experts take ${pct(topShare)} of its accesses (uniform routing: ${pct(SHAPE.topK / SHAPE.experts)})`);
const header = ['budget', 'policy', 'hit rate', 'expert reads', 'prefetched (used)', 'read ms', 'async (wait ms)', 'decode tok/s'];
const table = rows.map((r) => [
  r.budgetFraction === null ? '—' : `${Math.round(r.budgetFraction * 100)} % (${formatBytes(r.budgetBytes!)})`,
  r.policy, pct(r.hitRate), String(r.expertReads),
  r.prefetchLoads ? `${r.prefetchLoads} (${r.prefetchHits})` : '', r.readMs === undefined ? '' : String(r.readMs),
  r.asyncLoads === undefined ? '' : `${r.asyncLoads} (${r.waitMs})`,
  Number.isFinite(r.decodeTokPerSec) ? r.decodeTokPerSec.toFixed(2) : '',
]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i]!.length)));
const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
console.log(line(header));
for (const t of table) console.log(line(t));

if (!quick) {
  const out = join(dirname(fileURLToPath(import.meta.url)), '../../bench/results/offload.json');
  mkdirSync(dirname(out), { recursive: true });
  const json = {
    date: new Date().toISOString(),
    shape: SHAPE, expertBytes: one, totalExpertBytes: total, promptTokens: PROMPT, decodeTokens: NEW,
    kernels: linearKernelName(), kernelThreads: wasmBackendInfo()?.threads ?? 1, cores: cpus().length, topKExpertShare: topShare,
    notes: [
      'random weights: the routers are random projections; routing is far from uniform in practice (topKExpertShare: the share of a layer\'s accesses taken by its top-k most used experts, uniform = k/E), because the hidden states of a random model are similar from token to token',
      'tokens are sampled at temperature 1 with a fixed seed (identical in every run: logits are bit-identical); greedy decoding of a random model repeats a token and its routing',
      'hit rate and Belady are over the whole run (prefill + decode accesses); tokens/s is decode only',
      'the checkpoint is in the OS page cache: an expert read is a memcpy from the page cache, not a disk read',
      'prefetch for layer l+1 is issued when layer l has routed, before its expert GEMMs (layer l\'s experts pinned); its reads run on a reader thread (readSync into the shared WASM heap, Atomics completion flags) while layer l computes; asyncLoads = prefetches read that way, waitMs = main-thread time blocked on them (part of readMs); demand misses stay synchronous',
      '"prefetch (sync reads)" is the same cache and policy with the prefetch reads done synchronously at issue time (asyncPrefetch: false): same hits and reads, no overlap',
      'a page-cache read is itself a CPU copy: the reader thread needs a free core. With kernelThreads = cores it competes with the kernels\' worker pool for CPU (and memory bandwidth) and can make decoding slower than synchronous prefetch; the library default (asyncPrefetch \'auto\') therefore uses it only when cores > kernel threads',
      'Belady (furthest next use) bounds demand-fetching caches; a prefetching cache is not one and may exceed it',
    ],
    rows,
  };
  const tmp = `${out}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(json, null, 2) + '\n');
  renameSync(tmp, out);
  console.log(`wrote ${out}`);
}
