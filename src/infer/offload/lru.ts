/** Least recently used: evict the resident expert whose last use is oldest. */
import type { EvictionPolicy } from './policy.js';

export class LruPolicy implements EvictionPolicy {
  readonly name: string = 'lru';
  /** Resident keys, least recently used first (Map keeps insertion order; an access re-inserts). */
  private readonly order = new Map<number, true>();

  onAccess(key: number): void {
    this.touch(key);
  }

  /** Not `this.onAccess`: a subclass's onAccess (prefetch: a demand use) must not run for an insertion. */
  onInsert(key: number): void {
    this.touch(key);
  }

  /** Make `key` the most recently used. */
  protected touch(key: number): void {
    this.order.delete(key);
    this.order.set(key, true);
  }

  onEvict(key: number): void {
    this.order.delete(key);
  }

  victim(pinned: ReadonlySet<number>): number | undefined {
    for (const k of this.order.keys()) if (!pinned.has(k)) return k;
    return undefined;
  }
}
