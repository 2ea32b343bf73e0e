/** The shared WASM heap allocator: alignment, no overlap, reuse, zeroing, coalescing, limits, growth. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WasmHeap, PAGE_BYTES } from '../../src/backend/cpu/wasm/heap.js';
import { rng } from './ref.js';

test('random alloc/free: 16-byte aligned, inside the memory, never overlapping, zeroed', () => {
  const heap = new WasmHeap({ maxPages: 512 }); // 32 MiB cap
  const r = rng(21);
  const live = new Map<number, number>(); // start → requested bytes
  for (let step = 0; step < 4000; step++) {
    if (live.size > 0 && r() < 0.45) {
      const keys = [...live.keys()];
      const k = keys[Math.floor(r() * keys.length)]!;
      heap.release(k);
      live.delete(k);
      continue;
    }
    const bytes = r() < 0.1 ? 0 : Math.floor(r() ** 3 * 200_000) + 1;
    const p = heap.alloc(bytes);
    if (p === undefined) continue; // full: allowed
    assert.equal(p % 16, 0, 'alignment');
    assert.ok(p >= heap.base, 'below base');
    assert.ok(p + bytes <= heap.buffer.byteLength, 'beyond the memory');
    const view = new Uint8Array(heap.buffer, p, bytes);
    assert.ok(view.every((v) => v === 0), 'block not zeroed');
    view.fill(0xab); // dirty it so reuse must zero again
    for (const [q, qb] of live) assert.ok(p + Math.max(bytes, 1) <= q || q + Math.max(qb, 1) <= p, `overlap [${p}, +${bytes}) with [${q}, +${qb})`);
    live.set(p, bytes);
  }
  for (const k of live.keys()) heap.release(k);
  const s = heap.stats();
  assert.equal(s.liveBytes, 0);
  assert.equal(s.blocks, 0);
  assert.equal(s.freeBytes, 0, 'free blocks should coalesce back into the top');
  assert.equal(s.top, heap.base);
});

test('freed space is reused first-fit, and neighbours coalesce', () => {
  const heap = new WasmHeap();
  const a = heap.alloc(1000)!;
  const b = heap.alloc(1000)!;
  const c = heap.alloc(1000)!;
  heap.alloc(16); // keeps the top above c
  heap.release(a);
  heap.release(b);
  // Blocks round up to 16 bytes: a and b are 1008 bytes each and should have merged into one 2016-byte hole.
  assert.equal(heap.alloc(2016), a, 'a and b should have merged into one hole');
  heap.release(c);
  assert.equal(heap.alloc(500), c);
  assert.throws(() => heap.release(a + 16), /not a live block/);
});

test('a capped heap refuses what does not fit and keeps working', () => {
  const heap = new WasmHeap({ maxPages: 64 }); // 4 MiB
  assert.equal(heap.alloc(8 * 1024 * 1024), undefined);
  const p = heap.alloc(1024 * 1024);
  assert.ok(p !== undefined);
  assert.equal(heap.maxBytes, 64 * PAGE_BYTES);
});

test('views made before growth stay recognised and valid after it', () => {
  const heap = new WasmHeap({ initialPages: 2 });
  const p = heap.alloc(100)!;
  const early = new Float32Array(heap.buffer, p, 25);
  early[3] = 42;
  const q = heap.alloc(200 * 1024 * 1024)!; // forces growth
  assert.ok(q !== undefined);
  assert.notEqual(early.buffer, heap.buffer, 'growth gives memory.buffer a new object');
  assert.ok(heap.owns(early));
  assert.ok(heap.owns(new Uint16Array(heap.buffer, q, 4)));
  assert.ok(!heap.owns(new Float32Array(4)));
  assert.equal(new Float32Array(heap.buffer, p, 25)[3], 42, 'same bytes seen through the new buffer');
});
