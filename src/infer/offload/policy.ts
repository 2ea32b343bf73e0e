/**
 * Eviction policies of the expert cache. A policy only orders the resident keys: the cache tells it about accesses,
 * insertions and evictions, and asks it for a victim when a new expert does not fit. Keys are opaque numbers (the
 * cache uses layer · 65536 + expert).
 */
export interface EvictionPolicy {
  readonly name: string;
  /** A resident key was used (a hit, or the use that follows a miss's insertion). */
  onAccess(key: number): void;
  /** A key became resident on a demand miss (and on a prefetch, unless the policy has onPrefetch). */
  onInsert(key: number): void;
  /** A key became resident ahead of use (prefetching policies). */
  onPrefetch?(key: number): void;
  /** MoE layer `layer` has routed and is about to access its experts (prefetching policies). */
  onLayer?(layer: number): void;
  /** A key left the cache. */
  onEvict(key: number): void;
  /** The key to evict next among the resident ones, skipping `pinned`; undefined when every resident key is pinned. */
  victim(pinned: ReadonlySet<number>): number | undefined;
}

export type PolicyName = 'lru' | 'lfu' | 'prefetch' | 'none';
export const POLICY_NAMES: readonly PolicyName[] = ['lru', 'lfu', 'prefetch', 'none'];

export function expertKey(layer: number, expert: number): number {
  return layer * 65536 + expert;
}

export function keyLayer(key: number): number {
  return Math.floor(key / 65536);
}

export function keyExpert(key: number): number {
  return key % 65536;
}

/**
 * Demand-only simulation of a policy on an access trace with room for `capacity` equal-sized items (for tests and
 * for comparing policies offline). Returns the hits and the keys evicted, in order.
 */
export function simulate(policy: EvictionPolicy, trace: readonly number[], capacity: number): { hits: number; misses: number; evicted: number[] } {
  if (!(capacity >= 1)) throw new Error(`cache capacity must be at least 1, got ${capacity}`);
  const resident = new Set<number>();
  const evicted: number[] = [];
  let hits = 0;
  const none = new Set<number>();
  for (const k of trace) {
    if (resident.has(k)) {
      hits++;
    } else {
      while (resident.size >= capacity) {
        const v = policy.victim(none);
        if (v === undefined) throw new Error('policy found no victim');
        resident.delete(v);
        policy.onEvict(v);
        evicted.push(v);
      }
      resident.add(k);
      policy.onInsert(k);
    }
    policy.onAccess(k);
  }
  return { hits, misses: trace.length - hits, evicted };
}
