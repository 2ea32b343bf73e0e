/**
 * The expert cache of offloaded inference: it sits between the MoE blocks and the checkpoint. Non-expert weights
 * stay resident; routed experts are read on demand (ExpertReader: per-expert tensors or a fused tensor's row range)
 * into a cache that holds at most `budgetBytes` of expert weights, accounted with each expert's real byte size.
 * A miss evicts the policy's victims until the new expert fits; evicted storage goes back to the WASM heap.
 *
 * Prefetch (policy 'prefetch'): after layer l's experts ran, the next MoE layer's router is applied to layer l's MoE
 * input and its predicted experts are loaded ahead of use (afterLayer); mispredictions are evicted first. JS here is synchronous and reads are
 * positioned readSync calls, so the prefetch read does not overlap compute: it moves reads earlier, and the measured
 * gain is the hit rate (and only that: the same bytes are read, at a different moment).
 *
 * Every demand access is appended to `trace` (key = layer · 65536 + expert) so Belady's bound can be computed on the
 * same access sequence afterwards.
 */
import type { ExpertLayout } from '../../models/spec.js';
import type { ExpertWeights } from '../../moe/experts.js';
import { UserError } from '../../util/errors.js';
import { ExpertReader, TensorFiles, freeBlocks, type LoadedExpert } from './expert-reader.js';
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
  /** Time spent reading experts (ms; demand and prefetch). */
  readMs: number;
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

interface Entry extends LoadedExpert {
  /** Loaded by prefetch and not yet used by a demand access. */
  prefetched: boolean;
}

interface Layer {
  reader: ExpertReader;
  /** The experts this layer's router would choose for hidden states x[T, D] (pre-gating), if it can say. */
  predict?: (x: Float32Array, T: number) => readonly number[];
}

function emptyStats(): OffloadStats {
  return { accesses: 0, hits: 0, misses: 0, prefetchHits: 0, prefetchLoads: 0, loads: 0, bytesRead: 0, evictions: 0, readMs: 0, peakBytes: 0 };
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

  constructor(dir: string, opts: OffloadOptions) {
    if (!(Number.isSafeInteger(opts.budgetBytes) && opts.budgetBytes > 0)) throw new UserError(`memory budget must be a positive number of bytes, got ${opts.budgetBytes}`);
    this.budgetBytes = opts.budgetBytes;
    this.policy = makePolicy(opts.policy);
    this.record = opts.recordTrace ?? true;
    this.retain = (this.policy as { retain?: boolean }).retain !== false;
    this.prefetch = wantsPrefetch(this.policy);
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
      s.hits++;
      if (hit.prefetched) { s.prefetchHits++; hit.prefetched = false; }
      this.policy.onAccess(key);
      return hit.weights;
    }
    s.misses++;
    if (!this.retain) for (const k of [...this.resident.keys()]) this.evict(k);
    const entry = this.load(layer, e, key, new Set(), false);
    if (!entry) throw new Error(`expert cache: no room for layer ${layer} expert ${e}`); // cannot happen: budget ≥ one expert
    this.policy.onAccess(key);
    return entry.weights;
  }

  /** Called by MoE block `layer` after its experts ran, with its input x[T, D]: prefetch for the next MoE layer. */
  afterLayer(layer: number, x: Float32Array, T: number): void {
    if (!this.prefetch) return;
    const next = this.layerOrder.find((l) => l > layer);
    if (next === undefined) return;
    const predict = this.layers.get(next)!.predict;
    if (!predict) return;
    const pinned = new Set<number>();
    for (const e of predict(x, T)) {
      const key = expertKey(next, e);
      const have = this.resident.get(key);
      if (have) {
        this.policy.onInsert(key); // a predicted use: most recent for LRU, like a fresh prefetch
        pinned.add(key);
        continue;
      }
      if (!this.load(next, e, key, pinned, true)) break; // the rest of the prediction does not fit beside what it pinned
      pinned.add(key);
    }
  }

  /** Drop every resident expert and reset the statistics and trace (the policy keeps its history). */
  clear(): void {
    for (const k of [...this.resident.keys()]) this.evict(k);
    this.stats = emptyStats();
    this.trace.length = 0;
  }

  close(): void {
    for (const k of [...this.resident.keys()]) this.evict(k);
    this.files.close();
  }

  private load(layer: number, e: number, key: number, pinned: ReadonlySet<number>, prefetched: boolean): Entry | undefined {
    const l = this.layers.get(layer);
    if (!l) throw new Error(`expert cache: layer ${layer} is not registered`);
    const need = l.reader.expertBytes;
    while (this.residentBytes + need > this.budgetBytes) {
      const v = this.policy.victim(pinned);
      if (v === undefined) return undefined;
      this.evict(v);
    }
    const t0 = performance.now();
    const loaded = l.reader.read(e);
    const s = this.stats;
    s.readMs += performance.now() - t0;
    s.loads++;
    s.bytesRead += loaded.bytes;
    if (prefetched) s.prefetchLoads++;
    const entry: Entry = { ...loaded, prefetched };
    this.resident.set(key, entry);
    this.residentBytes += loaded.bytes;
    s.peakBytes = Math.max(s.peakBytes, this.residentBytes);
    if (prefetched && this.policy.onPrefetch) this.policy.onPrefetch(key);
    else this.policy.onInsert(key);
    return entry;
  }

  private evict(key: number): void {
    const entry = this.resident.get(key);
    if (!entry) throw new Error(`expert cache: policy ${this.policy.name} chose ${key}, which is not resident`);
    this.resident.delete(key);
    this.residentBytes -= entry.bytes;
    this.stats.evictions++;
    this.policy.onEvict(key);
    freeBlocks(entry.blocks);
  }
}
