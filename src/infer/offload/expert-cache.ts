/**
 * The expert cache of offloaded inference: it sits between the MoE blocks and the checkpoint. Non-expert weights
 * stay resident; routed experts are read on demand (ExpertReader: per-expert tensors or a fused tensor's row range)
 * into a cache that holds at most `budgetBytes` of expert weights, accounted with each expert's real byte size.
 * A miss evicts the policy's victims until the new expert fits; evicted storage goes back to the WASM heap.
 * Demand misses are read synchronously, on the main thread, when the expert is first needed.
 *
 * Prefetch (policy 'prefetch'), overlapped with compute: when MoE block l has routed its tokens and before its expert
 * GEMMs run (prefetchNext), the next MoE layer's router is applied to layer l's MoE input (pre-gating) and the
 * experts it predicts are made resident, with layer l's own routed experts pinned so the prefetch cannot evict them;
 * mispredictions are evicted first. Allocation and eviction happen on the main thread, at issue time; the bytes of a
 * prefetched expert are then read by a reader thread (async-read.ts: readSync straight into the shared WASM heap,
 * completion signalled per read with Atomics) while layer l's experts compute on the main thread. A demand access to
 * an expert whose read is still in flight blocks (Atomics.wait) until it lands; an in-flight expert is never freed:
 * evicting it (and clear/close) first waits for its reads. Only reads into final storage go to the thread (F32, and
 * BF16 kept as bf16, in the heap); F16 widening, GPT-OSS's transposed layout, storage outside the heap and caches made
 * without the WASM backend read synchronously at issue time, like `asyncPrefetch: false`. A read from the page cache
 * is itself a CPU copy, so the overlap needs a free core: by default ('auto') the reader thread is used only when the
 * machine has more cores than the WASM kernel threads. On the 2-core bench machine (npm run bench:offload), with 2
 * kernel threads the reader made decoding 11-17 % slower than synchronous prefetch (it takes the kernel pool worker's
 * core); with SWITCHYARD_THREADS=1 it made it 12-38 % faster. Expert storage that a read fills entirely is allocated
 * without zeroing (allocWeightDataForOverwrite).
 *
 * Every demand access is appended to `trace` (key = layer · 65536 + expert) so Belady's bound can be computed on the
 * same access sequence afterwards.
 */
import type { ExpertLayout } from '../../models/spec.js';
import type { ExpertWeights } from '../../moe/experts.js';
import { UserError } from '../../util/errors.js';
import { ExpertReader, TensorFiles, freeBlocks, type LoadedExpert, type RangeReader } from './expert-reader.js';
import { availableParallelism } from 'node:os';
import { ReadWorker } from './async-read.js';
import { wasmBackendInfo } from '../../backend/cpu/wasm/index.js';
import { expertKey, type EvictionPolicy, type PolicyName } from './policy.js';
import { LruPolicy } from './lru.js';
import { LfuPolicy } from './lfu.js';
import { PrefetchPolicy, wantsPrefetch } from './prefetch.js';
import { NoCachePolicy } from './none.js';
import { formatBytes } from './budget.js';

export interface OffloadOptions {
  /** Most bytes of routed-expert weights resident at once (at least one expert). */
  budgetBytes: number;
  /** Eviction policy: a name or an instance (default LRU). */
  policy?: PolicyName | EvictionPolicy;
  /** Record the demand-access trace (default true). */
  recordTrace?: boolean;
  /**
   * Read prefetched experts on the reader thread, overlapped with compute, where possible. Default 'auto': only when
   * the machine has a core beyond the WASM kernel threads (otherwise the reader takes a core from the kernels' worker
   * pool and decoding gets slower; measured on 2 cores with 2 kernel threads).
   */
  asyncPrefetch?: boolean | 'auto';
}

export interface OffloadStats {
  /** Demand accesses (one per expert with tokens per MoE layer forward). */
  accesses: number;
  hits: number;
  misses: number;
  /** Demand hits on experts that a prefetch loaded (and no demand access had used yet). */
  prefetchHits: number;
  /** Experts read by prefetch. */
  prefetchLoads: number;
  /** Experts read in all, and their bytes. */
  loads: number;
  bytesRead: number;
  evictions: number;
  /** Main-thread time spent on expert reads (ms): synchronous reads, issuing async ones, and waiting for them. */
  readMs: number;
  /** Prefetched experts whose bytes the reader thread read (overlapped with compute). */
  asyncLoads: number;
  /** Of those, how many had landed before anything had to wait for them. */
  asyncReady: number;
  /** Main-thread time blocked on in-flight reads (ms; part of readMs). */
  waitMs: number;
  /** Largest resident expert bytes seen. */
  peakBytes: number;
}

export function makePolicy(p: PolicyName | EvictionPolicy | undefined): EvictionPolicy {
  if (p === undefined || p === 'lru') return new LruPolicy();
  if (p === 'lfu') return new LfuPolicy();
  if (p === 'prefetch') return new PrefetchPolicy();
  if (p === 'none') return new NoCachePolicy();
  if (typeof p === 'string') throw new UserError(`unknown offload policy "${p as string}" (lru, lfu, prefetch, none)`);
  return p;
}

/** A byte-range read queued on the reader thread. */
interface PendingRead {
  slot: number;
  name: string;
  start: number;
  dst: Uint8Array;
}

interface Entry extends LoadedExpert {
  /** Loaded by prefetch and not yet used by a demand access. */
  prefetched: boolean;
  /** Reads still in flight on the reader thread (the weights must not be used or freed before they land). */
  pending?: PendingRead[];
}

interface Layer {
  reader: ExpertReader;
  /** The experts this layer's router would choose for hidden states x[T, D] (pre-gating), if it can say. */
  predict?: (x: Float32Array, T: number) => readonly number[];
}

function emptyStats(): OffloadStats {
  return { accesses: 0, hits: 0, misses: 0, prefetchHits: 0, prefetchLoads: 0, loads: 0, bytesRead: 0, evictions: 0, readMs: 0, asyncLoads: 0, asyncReady: 0, waitMs: 0, peakBytes: 0 };
}

export class ExpertCache {
  readonly policy: EvictionPolicy;
  readonly budgetBytes: number;
  readonly trace: number[] = [];
  stats: OffloadStats = emptyStats();
  private readonly files: TensorFiles;
  private readonly layers = new Map<number, Layer>();
  private layerOrder: number[] = [];
  private readonly resident = new Map<number, Entry>();
  private residentBytes = 0;
  private readonly record: boolean;
  private readonly retain: boolean;
  private readonly prefetch: boolean;
  private readonly asyncPrefetch: boolean | 'auto';
  /** The reader thread's id for `files` (set once a read was queued there). */
  private fileId?: number;

  constructor(dir: string, opts: OffloadOptions) {
    if (!(Number.isSafeInteger(opts.budgetBytes) && opts.budgetBytes > 0)) throw new UserError(`memory budget must be a positive number of bytes, got ${opts.budgetBytes}`);
    this.budgetBytes = opts.budgetBytes;
    this.policy = makePolicy(opts.policy);
    this.record = opts.recordTrace ?? true;
    this.retain = (this.policy as { retain?: boolean }).retain !== false;
    this.prefetch = wantsPrefetch(this.policy);
    this.asyncPrefetch = opts.asyncPrefetch ?? 'auto';
    this.files = new TensorFiles(dir);
  }

  /** Register a MoE layer's routed experts (called by the MoE block instead of loading them). */
  addLayer(layer: number, layout: ExpertLayout, E: number, D: number, keepBf16: boolean, predict?: Layer['predict']): void {
    const reader = new ExpertReader(this.files, layout, E, D, keepBf16);
    if (reader.expertBytes > this.budgetBytes) {
      throw new UserError(`memory budget ${formatBytes(this.budgetBytes)} (${this.budgetBytes} bytes) is smaller than one expert of layer ${layer} (${reader.expertBytes} bytes)`);
    }
    this.layers.set(layer, { reader, predict });
    this.layerOrder = [...this.layers.keys()].sort((a, b) => a - b);
  }

  /** Bytes of all routed experts of all registered layers (what a fully resident model holds). */
  totalExpertBytes(): number {
    let n = 0;
    for (const l of this.layers.values()) n += l.reader.expertBytes * l.reader.E;
    return n;
  }

  /** The largest single expert (a budget must hold at least this). */
  maxExpertBytes(): number {
    let n = 0;
    for (const l of this.layers.values()) n = Math.max(n, l.reader.expertBytes);
    return n;
  }

  get bytesResident(): number {
    return this.residentBytes;
  }

  /** Demand access: the expert's weights, read from the checkpoint on a miss. */
  get(layer: number, e: number): ExpertWeights {
    const key = expertKey(layer, e);
    const s = this.stats;
    s.accesses++;
    if (this.record) this.trace.push(key);
    const hit = this.resident.get(key);
    if (hit) {
      if (hit.pending) this.finish(hit);
      s.hits++;
      if (hit.prefetched) { s.prefetchHits++; hit.prefetched = false; }
      this.policy.onAccess(key);
      return hit.weights;
    }
    s.misses++;
    if (!this.retain) for (const k of [...this.resident.keys()]) this.evict(k);
    const entry = this.load(layer, e, key, new Set(), false, false);
    if (!entry) throw new Error(`expert cache: no room for layer ${layer} expert ${e}`); // cannot happen: budget ≥ one expert
    this.policy.onAccess(key);
    return entry.weights;
  }

  /**
   * Called by MoE block `layer` once it has routed x[T, D] and before its experts run, with the experts it is about
   * to use: prefetch for the next MoE layer (its router applied to x), reads queued on the reader thread so that they
   * overlap this layer's expert compute. `using` (this layer's experts) are pinned: the prefetch never evicts them.
   */
  prefetchNext(layer: number, x: Float32Array, T: number, using: Iterable<number> = []): void {
    if (!this.prefetch) return;
    const next = this.layerOrder.find((l) => l > layer);
    if (next === undefined) return;
    const predict = this.layers.get(next)!.predict;
    if (!predict) return;
    this.policy.onLayer?.(layer);
    const pinned = new Set<number>();
    for (const e of using) {
      const key = expertKey(layer, e);
      if (this.resident.has(key)) pinned.add(key);
    }
    for (const e of predict(x, T)) {
      const key = expertKey(next, e);
      const have = this.resident.get(key);
      if (have) {
        this.policy.onInsert(key); // a predicted use: most recent for LRU, like a fresh prefetch
        pinned.add(key);
        continue;
      }
      if (!this.load(next, e, key, pinned, true, this.asyncPrefetch !== false)) break; // the rest of the prediction does not fit beside what it pinned
      pinned.add(key);
    }
  }

  /** Drop every resident expert and reset the statistics and trace (the policy keeps its history). */
  clear(): void {
    for (const en of this.resident.values()) if (en.pending) this.finish(en);
    for (const k of [...this.resident.keys()]) this.evict(k);
    this.stats = emptyStats();
    this.trace.length = 0;
  }

  close(): void {
    for (const en of this.resident.values()) if (en.pending) this.finish(en);
    for (const k of [...this.resident.keys()]) this.evict(k);
    this.files.close();
    if (this.fileId !== undefined) ReadWorker.get().closeFile(this.fileId);
  }

  private load(layer: number, e: number, key: number, pinned: ReadonlySet<number>, prefetched: boolean, overlap: boolean): Entry | undefined {
    const l = this.layers.get(layer);
    if (!l) throw new Error(`expert cache: layer ${layer} is not registered`);
    const need = l.reader.expertBytes;
    while (this.residentBytes + need > this.budgetBytes) {
      const v = this.policy.victim(pinned);
      if (v === undefined) return undefined;
      this.evict(v);
    }
    const t0 = performance.now();
    const pending: PendingRead[] = [];
    const loaded = l.reader.read(e, overlap ? this.asyncReader(pending) : undefined);
    const s = this.stats;
    s.readMs += performance.now() - t0;
    s.loads++;
    s.bytesRead += loaded.bytes;
    if (prefetched) s.prefetchLoads++;
    const entry: Entry = { ...loaded, prefetched };
    if (pending.length) {
      entry.pending = pending;
      s.asyncLoads++;
    }
    this.resident.set(key, entry);
    this.residentBytes += loaded.bytes;
    s.peakBytes = Math.max(s.peakBytes, this.residentBytes);
    if (prefetched && this.policy.onPrefetch) this.policy.onPrefetch(key);
    else this.policy.onInsert(key);
    return entry;
  }

  /**
   * A RangeReader that queues reads into the WASM heap on the reader thread (collecting them in `pending`) and reads
   * anything else synchronously; undefined (all synchronous) without the WASM backend.
   */
  private asyncReader(pending: PendingRead[]): RangeReader | undefined {
    const info = wasmBackendInfo();
    if (!info) return undefined;
    if (this.asyncPrefetch === 'auto' && availableParallelism() <= info.threads) return undefined;
    const rw = ReadWorker.get();
    return (name, start, dst) => {
      if (ReadWorker.canFill(dst)) {
        const at = this.files.locate(name, start, dst.length);
        this.fileId ??= ReadWorker.fileId();
        const slot = rw.issue(this.fileId, at.path, at.offset, dst);
        if (slot !== undefined) {
          pending.push({ slot, name, start, dst });
          return;
        }
      }
      this.files.readRange(name, start, dst);
    };
  }

  /** Wait for an entry's in-flight reads (a failed one is repeated here, so its error is reported). */
  private finish(entry: Entry): void {
    const pending = entry.pending;
    if (!pending) return;
    entry.pending = undefined;
    const rw = ReadWorker.get();
    const s = this.stats;
    if (pending.every((p) => rw.done(p.slot))) s.asyncReady++;
    const t0 = performance.now();
    let err: unknown;
    for (const p of pending) {
      if (rw.wait(p.slot)) continue;
      try {
        this.files.readRange(p.name, p.start, p.dst);
      } catch (e) {
        err ??= e;
      }
    }
    const dt = performance.now() - t0;
    s.waitMs += dt;
    s.readMs += dt;
    if (err !== undefined) throw err;
  }

  private evict(key: number): void {
    const entry = this.resident.get(key);
    if (!entry) throw new Error(`expert cache: policy ${this.policy.name} chose ${key}, which is not resident`);
    if (entry.pending) this.finish(entry); // never free storage the reader thread is still writing
    this.resident.delete(key);
    this.residentBytes -= entry.bytes;
    this.stats.evictions++;
    this.policy.onEvict(key);
    freeBlocks(entry.blocks);
  }
}
