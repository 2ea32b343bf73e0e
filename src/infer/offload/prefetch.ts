/**
 * Routing-aware prefetch (pre-gating, as in Pre-gated MoE / Read-ME / ExpertFlow): once layer l has routed its tokens
 * and before its experts run, layer l+1's router is applied to layer l's MoE input (the hidden state at hand) and the
 * experts it would choose are loaded into the cache (their reads overlapping layer l's compute, see expert-cache.ts)
 * before layer l+1 asks for them. The prediction lives in the MoE block (it owns the router)
 * and the loading in the cache; this policy decides eviction:
 *
 * LRU, except that a mispredicted prefetch goes first: an expert that was prefetched for a layer, whose layer has
 * since been accessed without using it (and is no longer the layer being run), is evicted before any LRU victim.
 * Without that rule wrong guesses push useful experts out and, on a cyclic access pattern slightly larger than the
 * cache, LRU + prefetch loses every non-prefetched hit.
 */
import { LruPolicy } from './lru.js';
import { keyLayer } from './policy.js';

export class PrefetchPolicy extends LruPolicy {
  override readonly name: string = 'prefetch';
  /** The cache asks the next MoE layer for its predicted experts only when its policy sets this. */
  readonly prefetch = true;
  private clock = 0;
  /** Prefetched keys not used yet → when they were prefetched. */
  private readonly unused = new Map<number, number>();
  /** layer → time of its latest demand access. */
  private readonly layerUse = new Map<number, number>();
  private current = -1;

  onPrefetch(key: number): void {
    super.onInsert(key);
    this.unused.set(key, ++this.clock);
  }

  /**
   * Layer `layer` has routed its tokens and is about to run (the cache prefetches for the next layer now, before
   * this layer's demand accesses): it is the current layer, so earlier layers' unused prefetches count as mispredicted.
   */
  onLayer(layer: number): void {
    this.current = layer;
    this.layerUse.set(layer, ++this.clock);
  }

  /** A resident key predicted again: if it is still an unused prefetch, its prediction is fresh again. */
  override onInsert(key: number): void {
    super.onInsert(key);
    if (this.unused.has(key)) this.unused.set(key, ++this.clock);
  }

  override onAccess(key: number): void {
    super.onAccess(key);
    this.unused.delete(key);
    this.current = keyLayer(key);
    this.layerUse.set(this.current, ++this.clock);
  }

  override onEvict(key: number): void {
    super.onEvict(key);
    this.unused.delete(key);
  }

  override victim(pinned: ReadonlySet<number>): number | undefined {
    for (const [k, t] of this.unused) {
      const l = keyLayer(k);
      if (!pinned.has(k) && l !== this.current && (this.layerUse.get(l) ?? -1) > t) return k;
    }
    return super.victim(pinned);
  }
}

export function wantsPrefetch(p: object): boolean {
  return (p as { prefetch?: unknown }).prefetch === true;
}
