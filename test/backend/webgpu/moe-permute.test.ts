/**
 * The MoE permutation of src/backend/webgpu/kernels/moe-permute.ts: the single-dispatch path (n ≤ 256 slots) against
 * the three-dispatch path and against a plain host reference written here (stable sort of the slots by expert,
 * offsets, tiles of ≤ bm rows in expert order).
 *
 * Every word of `perm` (0 .. orderBase + n) is compared, padding included: both paths write all of it (the tile
 * slots past the tile count and the order past the routed slots are 0, as are perm[2..3]), so a pooled buffer's old
 * contents can never leak through. Covered: E ∈ {1, 2, 8, 60, 128, 256, 300} (at 300, thread i owns offsets i and
 * i + 256) and one E = 5000 sweep (20 offsets per thread); bm ∈ {8, 32}; n = 1 .. 256 (the edges 1, bm − 1, bm,
 * bm + 1, 255, 256 and random ones); slotBase > 0 inside an experts tensor longer than slotBase + n (the ids around
 * the window are garbage that must not be read); routings uniform over [−1, E] (ids −1 and E are out of range and
 * left out), skewed onto a few experts, all on one expert (several tiles of one expert), all out of range (zero
 * routed slots, zero tiles), and sorted / reverse-sorted. Past 256 slots the default takes the three-dispatch path
 * (checked by the dispatch count and against the reference), and forcing the single dispatch there throws.
 *
 * Tolerance: none. The outputs are integers and must match exactly.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GpuContext } from '../../../src/backend/webgpu/context.js';
import { moePermuteGpu, MOE_PERMUTE_FUSED_MAX_SLOTS, type MoePermuteOptions } from '../../../src/backend/webgpu/kernels/moe-permute.js';
import { seededUniform } from '../../../src/train/model/rng.js';

let ctx: GpuContext;
let cases = 0;
before(async () => { ctx = await GpuContext.create({ subgroupMatrix: false }); });
after(() => {
  console.log(`# moe-permute: ${cases} routings compared word for word`);
  ctx.destroy();
});

/** The whole `perm` of the file comment of moe-permute.ts, on the host: stable counting sort by expert. */
function hostPerm(ids: Int32Array, slotBase: number, n: number, E: number, bm: number): Uint32Array {
  const maxTiles = Math.min(n, Math.ceil(n / bm) + Math.min(E, n));
  const offBase = 4;
  const tilesBase = offBase + E + 1;
  const orderBase = tilesBase + 3 * maxTiles;
  const out = new Uint32Array(orderBase + n);
  const byExpert: number[][] = Array.from({ length: E }, () => []);
  for (let s = 0; s < n; s++) {
    const e = ids[slotBase + s]!;
    if (e >= 0 && e < E) byExpert[e]!.push(s);
  }
  let row = 0;
  let tiles = 0;
  for (let e = 0; e < E; e++) {
    out[offBase + e] = row;
    const slots = byExpert[e]!;
    for (let r = 0; r < slots.length; r += bm) {
      out[tilesBase + 3 * tiles] = e;
      out[tilesBase + 3 * tiles + 1] = row + r;
      out[tilesBase + 3 * tiles + 2] = row + Math.min(r + bm, slots.length);
      tiles++;
    }
    for (const s of slots) out[orderBase + row++] = s;
  }
  out[offBase + E] = row;
  out[0] = tiles;
  out[1] = row;
  assert.ok(tiles <= maxTiles, 'host reference: tile bound');
  return out;
}

async function gpuPerm(ids: Int32Array, slotBase: number, n: number, E: number, bm: number, opts?: MoePermuteOptions): Promise<{ perm: Uint32Array; dispatches: number }> {
  const et = ctx.upload(ids);
  const before = ctx.dispatches;
  const pm = moePermuteGpu(ctx, et, slotBase, n, E, bm, opts);
  const dispatches = ctx.dispatches - before;
  const raw = await ctx.readI32(pm.perm);
  ctx.release(et, pm.perm);
  assert.equal(raw.length, pm.orderBase + n, 'perm length');
  return { perm: new Uint32Array(raw.buffer, raw.byteOffset, raw.length), dispatches };
}

type Kind = 'uniform' | 'skewed' | 'one' | 'none' | 'sorted' | 'reversed';
const KINDS: readonly Kind[] = ['uniform', 'skewed', 'uniform', 'one', 'uniform', 'sorted', 'none', 'reversed'];

/**
 * An experts tensor of `len` ids whose window [slotBase, slotBase + n) follows `kind`; ids outside the window are
 * wild (any i32 pattern in [−5, E + 5]).
 */
function routing(len: number, slotBase: number, n: number, E: number, kind: Kind, rnd: () => number): Int32Array {
  const ids = new Int32Array(len);
  for (let i = 0; i < len; i++) ids[i] = Math.floor(rnd() * (E + 11)) - 5;
  const few = Array.from({ length: 3 }, () => Math.floor(rnd() * E));
  const one = Math.floor(rnd() * E);
  for (let s = 0; s < n; s++) {
    let e: number;
    const u = rnd();
    switch (kind) {
      case 'uniform': e = Math.floor(u * (E + 2)) - 1; break; // −1 .. E: both ends out of range
      case 'skewed': e = u < 0.05 ? -1 : u < 0.1 ? E : few[Math.floor(rnd() * 3)]!; break;
      case 'one': e = one; break;
      case 'none': e = u < 0.5 ? -1 : E + Math.floor(rnd() * 3); break;
      case 'sorted': e = Math.min(E - 1, Math.floor((s * E) / n)); break;
      case 'reversed': e = E - 1 - Math.min(E - 1, Math.floor((s * E) / n)); break;
    }
    ids[slotBase + s] = e;
  }
  return ids;
}

function diff(got: Uint32Array, want: Uint32Array): string {
  for (let i = 0; i < Math.max(got.length, want.length); i++) {
    if (got[i] !== want[i]) return `first difference at word ${i}: got ${got[i]}, want ${want[i]}`;
  }
  return 'equal';
}

async function checkCase(E: number, bm: number, n: number, kind: Kind, seed: number): Promise<void> {
  const rnd = seededUniform(seed);
  const slotBase = seed % 3 === 0 ? 0 : 1 + Math.floor(rnd() * 40);
  const len = slotBase + n + Math.floor(rnd() * 20);
  const ids = routing(len, slotBase, n, E, kind, rnd);
  const want = hostPerm(ids, slotBase, n, E, bm);
  const what = `E=${E} bm=${bm} n=${n} ${kind} slotBase=${slotBase} len=${len} seed=${seed}`;
  const fused = await gpuPerm(ids, slotBase, n, E, bm, { path: 'fused' });
  const three = await gpuPerm(ids, slotBase, n, E, bm, { path: 'three' });
  const auto = await gpuPerm(ids, slotBase, n, E, bm);
  assert.equal(fused.dispatches, 1, `${what}: fused dispatches`);
  assert.equal(three.dispatches, 3, `${what}: three-pass dispatches`);
  assert.equal(auto.dispatches, 1, `${what}: the default takes one dispatch at n ≤ ${MOE_PERMUTE_FUSED_MAX_SLOTS}`);
  assert.ok(fused.perm.every((v, i) => v === three.perm[i]), `${what}: fused vs three-dispatch: ${diff(fused.perm, three.perm)}`);
  assert.ok(fused.perm.every((v, i) => v === want[i]), `${what}: fused vs host: ${diff(fused.perm, want)}`);
  assert.ok(three.perm.every((v, i) => v === want[i]), `${what}: three-dispatch vs host: ${diff(three.perm, want)}`);
  assert.ok(auto.perm.every((v, i) => v === want[i]), `${what}: default vs host: ${diff(auto.perm, want)}`);
}

test('single dispatch = three dispatches = host reference, word for word (E × bm × n sweep, random routings)', async () => {
  let seed = 1;
  for (const E of [1, 2, 8, 60, 128, 256, 300]) {
    for (const bm of [8, 32]) {
      const rnd = seededUniform(10_000 + E * 7 + bm);
      const ns = new Set([1, 2, bm - 1, bm, bm + 1, 255, 256]);
      while (ns.size < 12) ns.add(1 + Math.floor(rnd() * 256));
      for (const n of ns) {
        await checkCase(E, bm, n, KINDS[seed % KINDS.length]!, seed);
        seed++;
        cases++;
      }
    }
  }
});

test('every routing kind at n = 8 (decode) and n = 256, and a large E (5000: 20 offsets per thread)', async () => {
  let seed = 5000;
  for (const [E, bm] of [[8, 8], [60, 32], [256, 8], [5000, 32]] as const) {
    for (const n of [8, 256]) {
      for (const kind of ['uniform', 'skewed', 'one', 'none', 'sorted', 'reversed'] as const) {
        await checkCase(E, bm, n, kind, seed++);
        cases++;
      }
    }
  }
});

test('past 256 slots the default takes the three-dispatch path (and still matches the host)', async () => {
  let seed = 9000;
  for (const [E, n] of [[8, 257], [300, 257], [60, 600], [1, 513]] as const) {
    for (const bm of [8, 32]) {
      const rnd = seededUniform(seed);
      const slotBase = 5;
      const ids = routing(slotBase + n + 3, slotBase, n, E, KINDS[seed % KINDS.length]!, rnd);
      const want = hostPerm(ids, slotBase, n, E, bm);
      const auto = await gpuPerm(ids, slotBase, n, E, bm);
      const what = `E=${E} n=${n} bm=${bm}`;
      assert.equal(auto.dispatches, 3, `${what}: dispatches`);
      assert.ok(auto.perm.every((v, i) => v === want[i]), `${what}: ${diff(auto.perm, want)}`);
      seed++;
      cases++;
    }
  }
});

test('forcing the single dispatch past 256 slots throws a clear error', () => {
  const et = ctx.upload(new Int32Array(300));
  assert.throws(() => moePermuteGpu(ctx, et, 0, MOE_PERMUTE_FUSED_MAX_SLOTS + 1, 8, 8, { path: 'fused' }), /single-dispatch path takes at most 256 slots, got n=257/);
  // Forcing it at exactly 256 is fine.
  const pm = moePermuteGpu(ctx, et, 0, MOE_PERMUTE_FUSED_MAX_SLOTS, 8, 8, { path: 'fused' });
  ctx.release(et, pm.perm);
});
