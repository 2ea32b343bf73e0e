/**
 * Least frequently used: evict the resident expert used the fewest times so far, ties broken by least recent use.
 * Counts survive eviction ("perfect" LFU): an expert's popularity is a property of the model and the text, not of
 * how long it happened to stay resident, so a popular expert that was evicted once comes back with its history.
 */
import type { EvictionPolicy } from './policy.js';

export class LfuPolicy implements EvictionPolicy {
  readonly name: string = 'lfu';
  private readonly count = new Map<number, number>();
  /** Resident keys → time of last use. */
  private readonly lastUse = new Map<number, number>();
  private clock = 0;

  onAccess(key: number): void {
    this.count.set(key, (this.count.get(key) ?? 0) + 1);
    if (this.lastUse.has(key)) this.lastUse.set(key, ++this.clock);
  }

  onInsert(key: number): void {
    this.lastUse.set(key, ++this.clock);
  }

  onEvict(key: number): void {
    this.lastUse.delete(key);
  }

  victim(pinned: ReadonlySet<number>): number | undefined {
    let best: number | undefined;
    let bestCount = Infinity;
    let bestTime = Infinity;
    for (const [k, t] of this.lastUse) {
      if (pinned.has(k)) continue;
      const c = this.count.get(k) ?? 0;
      if (c < bestCount || (c === bestCount && t < bestTime)) { best = k; bestCount = c; bestTime = t; }
    }
    return best;
  }

  /** Uses of `key` so far (for tests and reports). */
  uses(key: number): number {
    return this.count.get(key) ?? 0;
  }
}
