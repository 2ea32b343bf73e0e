/** Eviction order of each offload cache policy on hand-made access sequences, Belady's bound, budget parsing. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { expertKey, simulate } from '../../../src/infer/offload/policy.js';
import { LruPolicy } from '../../../src/infer/offload/lru.js';
import { LfuPolicy } from '../../../src/infer/offload/lfu.js';
import { PrefetchPolicy } from '../../../src/infer/offload/prefetch.js';
import { belady } from '../../../src/infer/offload/belady.js';
import { parseBytes } from '../../../src/infer/offload/budget.js';

// The textbook reference string (Silberschatz, Operating System Concepts): with 3 frames, OPT takes 9 faults,
// LRU 12.
const TEXTBOOK = [7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1];

describe('offload policies', () => {
  it('LRU: 12 faults on the textbook string with 3 frames, evicting the least recently used', () => {
    const r = simulate(new LruPolicy(), TEXTBOOK, 3);
    assert.equal(r.misses, 12);
    assert.deepEqual(r.evicted, [7, 1, 2, 3, 0, 4, 0, 3, 2]);
  });
  it('LRU: pinned keys are skipped', () => {
    const p = new LruPolicy();
    for (const k of [1, 2, 3]) p.onInsert(k);
    p.onAccess(1);
    assert.equal(p.victim(new Set()), 2);
    assert.equal(p.victim(new Set([2])), 3);
    assert.equal(p.victim(new Set([1, 2, 3])), undefined);
  });
  it('LFU: evicts the least used, ties by least recent, counts survive eviction', () => {
    // Capacity 2. 1 1 → uses {1:2} | 2 miss {2:1} | 3 miss: evict 2 (1 use < 2) | 2 miss: evict 3 (1 use < 1's 2;
    // 2 comes back with its earlier use → 2 uses) | 2 hit (3 uses) | 3 miss: evict 1 (2 < 3) | 1 miss: evict 3
    // (3 and 1 both 2 uses... 3 has 2, 2 has 3 → 3).
    const p = new LfuPolicy();
    const r = simulate(p, [1, 1, 2, 3, 2, 2, 3, 1], 2);
    assert.deepEqual(r.evicted, [2, 3, 1, 3]);
    assert.equal(r.hits, 2);
    assert.equal(p.uses(2), 3);
  });
  it('LFU: equal counts fall back to LRU order', () => {
    const r = simulate(new LfuPolicy(), [1, 2, 3, 4], 2);
    assert.deepEqual(r.evicted, [1, 2]);
  });
  it('prefetch evicts like LRU', () => {
    const a = simulate(new PrefetchPolicy(), TEXTBOOK, 3);
    const b = simulate(new LruPolicy(), TEXTBOOK, 3);
    assert.deepEqual(a, b);
  });
  it('prefetch evicts a mispredicted prefetch first, but not before its layer has run', () => {
    const p = new PrefetchPolicy();
    const k = (l: number, e: number): number => expertKey(l, e);
    const none = new Set<number>();
    p.onInsert(k(0, 1)); p.onAccess(k(0, 1)); // layer 0 used expert 1
    p.onPrefetch(k(1, 2)); p.onPrefetch(k(1, 3)); // predicted for layer 1
    // Layer 1 has not run: plain LRU order (0:1 is oldest).
    assert.equal(p.victim(none), k(0, 1));
    p.onAccess(k(1, 2)); // layer 1 runs, uses 2; 3 is still ahead of use within layer 1
    assert.equal(p.victim(none), k(0, 1));
    p.onInsert(k(2, 0)); p.onAccess(k(2, 0)); // layer 2 runs: 1:3 was a misprediction
    assert.equal(p.victim(none), k(1, 3));
    assert.equal(p.victim(new Set([k(1, 3)])), k(0, 1));
    p.onEvict(k(1, 3));
    assert.equal(p.victim(none), k(0, 1));
  });
  it('prefetch: prefetching is not a use (a second prefetch for a layer does not make the first look mispredicted)', () => {
    const p = new PrefetchPolicy();
    const k = (l: number, e: number): number => expertKey(l, e);
    const none = new Set<number>();
    p.onInsert(k(0, 1)); p.onAccess(k(0, 1)); // layer 0 runs
    p.onLayer(0); // layer 0 routed: prefetch for layer 1 (before layer 0's expert GEMMs)
    p.onPrefetch(k(1, 2)); p.onPrefetch(k(1, 3));
    p.onInsert(k(0, 4)); // a demand miss of layer 0 after the prefetch: layer 1 has not run, so 1:2 is no victim yet
    p.onAccess(k(0, 4));
    assert.equal(p.victim(none), k(0, 1));
    p.onLayer(1); p.onAccess(k(1, 2)); // layer 1 runs and uses 2
    p.onLayer(2); // layer 2 routed: 1:3 was a misprediction
    assert.equal(p.victim(none), k(1, 3));
  });
  it('Belady: 9 faults (11 hits) on the textbook string with 3 frames', () => {
    const r = belady(TEXTBOOK, 3);
    assert.equal(r.misses, 9);
    assert.equal(r.hits, 11);
    assert.deepEqual(r.evicted, [7, 1, 0, 4, 3, 2]);
  });
  it('Belady is never worse than LRU or LFU on random traces', () => {
    let s = 12345;
    const rnd = (): number => { s = (s * 1103515245 + 12345) >>> 0; return s / 2 ** 32; };
    for (let t = 0; t < 50; t++) {
      const trace = Array.from({ length: 200 }, () => Math.floor(rnd() ** 2 * 12));
      for (const cap of [1, 3, 6]) {
        const opt = belady(trace, cap).hits;
        assert.ok(opt >= simulate(new LruPolicy(), trace, cap).hits);
        assert.ok(opt >= simulate(new LfuPolicy(), trace, cap).hits);
      }
    }
  });
  it('parses memory budgets with suffixes', () => {
    assert.equal(parseBytes('1024'), 1024);
    assert.equal(parseBytes('512M'), 512 * 2 ** 20);
    assert.equal(parseBytes('2G'), 2 * 2 ** 30);
    assert.equal(parseBytes('1.5g'), 1.5 * 2 ** 30);
    assert.equal(parseBytes('64KiB'), 65536);
    assert.throws(() => parseBytes('lots'), /byte count/);
    assert.throws(() => parseBytes('0'), /positive/);
  });
});
