/**
 * The WASM heap: one shared WebAssembly.Memory (wasm32, so at most 65536 pages = 4 GiB) that holds weights and the
 * kernels' scratch, read in place by the main thread's and every worker's module instance.
 *
 * Allocation is first-fit over an address-sorted free list, coalescing on release, with a bump pointer above it;
 * every block starts and ends on a 16-byte boundary. The memory grows on demand (at least GROW_MIN_BYTES at a time).
 * Addresses below `base` are never handed out (address 0 stays unused, so 0 can never be a valid block).
 *
 * Growing a shared memory does not move or detach it, but `memory.buffer` then returns a new SharedArrayBuffer
 * object; views made earlier stay valid on their (shorter) buffer. `owns()` therefore remembers every buffer object
 * it has handed views out of.
 */

export const PAGE_BYTES = 65536;
export const MAX_PAGES = 65536;
/** Growth step: fewer grows, fewer buffer objects; pages beyond what is written are never touched. */
const GROW_MIN_BYTES = 64 * 1024 * 1024;
const ALIGN = 16;

interface Block {
  start: number;
  size: number;
}

export interface HeapStats {
  /** Bytes the memory currently spans. */
  memoryBytes: number;
  /** Bytes in live blocks. */
  liveBytes: number;
  /** Live blocks. */
  blocks: number;
  /** Bytes in free-list holes below the bump pointer. */
  freeBytes: number;
  /** The bump pointer: everything at or above it is unused. */
  top: number;
}

export const align16 = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;

export class WasmHeap {
  readonly memory: WebAssembly.Memory;
  readonly base: number;
  readonly maxBytes: number;
  private readonly buffers = new Set<ArrayBufferLike>();
  private readonly live = new Map<number, number>();
  private free: Block[] = [];
  private top: number;
  /** Everything at or above this address has never been handed out, so it still reads as zero. */
  private pristine: number;
  private liveBytes = 0;
  private cur!: SharedArrayBuffer;

  /** `maxPages` caps growth below the wasm32 limit (tests use it to exercise the full-heap path cheaply). */
  constructor(opts: { base?: number; initialPages?: number; maxPages?: number } = {}) {
    const maxPages = Math.min(opts.maxPages ?? MAX_PAGES, MAX_PAGES);
    this.base = align16(opts.base ?? PAGE_BYTES);
    const initial = Math.max(opts.initialPages ?? 1, Math.ceil((this.base + ALIGN) / PAGE_BYTES));
    if (initial > maxPages) throw new Error(`wasm heap: ${initial} initial pages exceed the maximum of ${maxPages}`);
    // The module declares maximum 65536; an imported memory's maximum may be lower, never higher.
    this.memory = new WebAssembly.Memory({ initial, maximum: maxPages, shared: true });
    this.maxBytes = maxPages * PAGE_BYTES;
    this.top = this.base;
    this.pristine = this.base;
    this.refresh();
  }

  /** The memory's current buffer (registered, so views on it are recognised by `owns`). */
  get buffer(): SharedArrayBuffer {
    return this.cur;
  }

  private refresh(): void {
    this.cur = this.memory.buffer as unknown as SharedArrayBuffer;
    this.buffers.add(this.cur);
  }

  /** True when `view` is a view into this heap (its address in the heap is then `view.byteOffset`). */
  owns(view: ArrayBufferView): boolean {
    return this.buffers.has(view.buffer);
  }

  /**
   * A 16-byte aligned block of `bytes` bytes (zeroed unless `zero` is false: then a reused block keeps old bytes,
   * for callers that overwrite all of it), or undefined when the heap cannot hold it (4 GiB wasm32 limit,
   * `maxPages`, or the host refusing to grow the memory).
   */
  alloc(bytes: number, zero = true): number | undefined {
    if (!Number.isFinite(bytes) || bytes < 0) throw new Error(`wasm heap: bad allocation size ${bytes}`);
    const size = Math.max(ALIGN, align16(bytes));
    let start: number | undefined;
    for (let i = 0; i < this.free.length; i++) {
      const b = this.free[i]!;
      if (b.size < size) continue;
      start = b.start;
      if (b.size === size) this.free.splice(i, 1);
      else { b.start += size; b.size -= size; }
      break;
    }
    if (start === undefined) {
      // Bump; a free block ending at the top is merged into the top by release(), so none can be extended here.
      if (this.top + size > this.maxBytes) return undefined;
      if (!this.ensure(this.top + size)) return undefined;
      start = this.top;
      this.top += size;
    }
    this.live.set(start, size);
    this.liveBytes += size;
    // Reused bytes may hold old data; never-used ones are zero already (fresh wasm pages are zero-filled).
    if (zero && start < this.pristine) new Uint8Array(this.cur, start, Math.min(size, this.pristine - start)).fill(0);
    this.pristine = Math.max(this.pristine, start + size);
    return start;
  }

  /** Return a block from `alloc`. */
  release(start: number): void {
    const size = this.live.get(start);
    if (size === undefined) throw new Error(`wasm heap: release of ${start}, which is not a live block`);
    this.live.delete(start);
    this.liveBytes -= size;
    // Insert sorted, then coalesce with the neighbours.
    let i = 0;
    while (i < this.free.length && this.free[i]!.start < start) i++;
    this.free.splice(i, 0, { start, size });
    if (i + 1 < this.free.length && start + size === this.free[i + 1]!.start) {
      this.free[i]!.size += this.free[i + 1]!.size;
      this.free.splice(i + 1, 1);
    }
    if (i > 0 && this.free[i - 1]!.start + this.free[i - 1]!.size === start) {
      this.free[i - 1]!.size += this.free[i]!.size;
      this.free.splice(i, 1);
      i--;
    }
    const last = this.free[this.free.length - 1];
    if (last && last.start + last.size === this.top) {
      this.top = last.start;
      this.free.pop();
    }
  }

  /** Size of the live block at `start` (undefined if none). */
  blockSize(start: number): number | undefined {
    return this.live.get(start);
  }

  /** Grow the memory so that addresses below `end` exist. */
  private ensure(end: number): boolean {
    const have = this.cur.byteLength;
    if (end <= have) return true;
    const havePages = have / PAGE_BYTES;
    const maxPages = this.maxBytes / PAGE_BYTES;
    const need = Math.ceil(end / PAGE_BYTES) - havePages;
    const want = Math.min(maxPages - havePages, Math.max(need, GROW_MIN_BYTES / PAGE_BYTES));
    try {
      this.memory.grow(want);
    } catch {
      // The host may refuse a large step; retry with exactly what is needed.
      try {
        if (want === need) return false;
        this.memory.grow(need);
      } catch {
        return false;
      }
    }
    this.refresh();
    return true;
  }

  f32(start: number, count: number): Float32Array {
    return new Float32Array(this.cur, start, count);
  }

  u16(start: number, count: number): Uint16Array {
    return new Uint16Array(this.cur, start, count);
  }

  stats(): HeapStats {
    let freeBytes = 0;
    for (const b of this.free) freeBytes += b.size;
    return { memoryBytes: this.cur.byteLength, liveBytes: this.liveBytes, blocks: this.live.size, freeBytes, top: this.top };
  }
}
