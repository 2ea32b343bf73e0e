/**
 * Belady's optimal offline replacement (MIN): on a miss with a full cache, evict the resident item whose next use
 * lies furthest in the future (never used again = infinitely far). Over a recorded trace of (layer, expert) accesses
 * this is the best hit rate any demand-fetching cache of that many equal-sized slots can reach — the bound the online
 * policies are compared with. (A prefetching cache is not demand-fetching and can in principle beat it.)
 */
export interface BeladyResult {
  hits: number;
  misses: number;
  hitRate: number;
  evicted: number[];
}

export function belady(trace: readonly number[], capacity: number): BeladyResult {
  if (!(capacity >= 1)) throw new Error(`cache capacity must be at least 1, got ${capacity}`);
  const n = trace.length;
  // next[i]: the index of the next access to trace[i] after i (n = never).
  const next = new Int32Array(n);
  const seen = new Map<number, number>();
  for (let i = n - 1; i >= 0; i--) {
    next[i] = seen.get(trace[i]!) ?? n;
    seen.set(trace[i]!, i);
  }
  /** resident key → index of its next use. */
  const resident = new Map<number, number>();
  const evicted: number[] = [];
  let hits = 0;
  for (let i = 0; i < n; i++) {
    const k = trace[i]!;
    if (resident.has(k)) {
      hits++;
    } else if (resident.size >= capacity) {
      let victim = -1;
      let far = -1;
      for (const [r, nu] of resident) if (nu > far) { far = nu; victim = r; }
      resident.delete(victim);
      evicted.push(victim);
    }
    resident.set(k, next[i]!);
  }
  return { hits, misses: n - hits, hitRate: n ? hits / n : 0, evicted };
}
