// SIMD kernels for y[T, N] = x[T, K] · W[N, K]ᵀ over a shared, imported linear memory (AssemblyScript).
//
// Built by scripts/build-wasm.mjs (`npm run build:wasm`); the bytes are embedded into
// src/backend/cpu/wasm/kernels.generated.ts. Everything here works on raw byte addresses handed in by the host;
// there is no allocation, no runtime and no static data.
//
// Accumulation order (the contract that makes results independent of thread split, tiling and batch size):
// for one (token t, row n) pair the kernel keeps one f32x4 accumulator `a`. K is walked in blocks of 8; for
// block b, a = (a + lo · x_lo) + hi · x_hi, where lo/hi are four weights each (see below). At the end:
// (a0 + a1) + (a2 + a3), then the K mod 8 tail elements in order, one scalar multiply-add at a time.
// Every micro-kernel below (4 rows × 2 tokens, 4 × 1, 1 × 2, 1 × 1) follows exactly this order, so y[t, n] comes
// out bit-identical whichever micro-kernel, token tile or thread computes it, and whatever T is.
//
// f32 weights: lo = elements 8b..8b+3, hi = 8b+4..8b+7, x as stored.
// bf16 weights: eight bf16 are loaded as one v128 and widened with two ops: `i32x4.shl(v, 16)` yields the even
// elements (8b, 8b+2, 8b+4, 8b+6) as f32, `v128.and(v, 0xffff0000)` the odd ones. The host first runs
// `permute_x` on x so each 8-block of x is stored as [x0 x2 x4 x6 | x1 x3 x5 x7]; the tail is left as is.
//
// Memory access: the four rows a 4-row kernel reads at once are a quarter of the row range apart (rows r, r + q,
// r + 2q, r + 3q), not adjacent. Measured on the development machine (AMD EPYC, 2 vCPUs), one thread, bf16
// [14336, 4096] at T = 1: four adjacent rows ≈ 15 GB/s, four rows a quarter apart ≈ 28 GB/s. One accumulator per
// (row, token) keeps the 4 × 2 tile within the 16 vector registers V8 allocates, without spills (two accumulators
// per pair spilled and ran ~25 % slower).

const HI: i32 = 0xffff0000;

/** Raw weight block at p (bf16: the eight values; f32: unused). */
@inline function wraw<W>(p: usize): v128 {
  if (sizeof<W>() == 2) return v128.load(p);
  return i32x4.splat(0);
}
/** The four `lo` weights of the block at p as f32. */
@inline function wlo<W>(p: usize, v: v128): v128 {
  if (sizeof<W>() == 2) return i32x4.shl(v, 16);
  return v128.load(p);
}
/** The four `hi` weights of the block at p as f32. */
@inline function whi<W>(p: usize, v: v128, mask: v128): v128 {
  if (sizeof<W>() == 2) return v128.and(v, mask);
  return v128.load(p, 16);
}
@inline function step(a: v128, lo: v128, hi: v128, xl: v128, xh: v128): v128 {
  return f32x4.add(f32x4.add(a, f32x4.mul(lo, xl)), f32x4.mul(hi, xh));
}
@inline function wAt<W>(w: usize, k: i32): f32 {
  if (sizeof<W>() == 2) return reinterpret<f32>(<u32>load<u16>(w + (<usize>k << 1)) << 16);
  return load<f32>(w + (<usize>k << 2));
}
/** Horizontal sum in the fixed order, then the tail elements k8..K-1 in order. */
@inline function finish<W>(a: v128, x: usize, w: usize, k8: i32, K: i32): f32 {
  let s: f32 = (f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1)) + (f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3));
  for (let k = k8; k < K; k++) s += load<f32>(x + (<usize>k << 2)) * wAt<W>(w, k);
  return s;
}

/**
 * 4 rows × 2 tokens. w0: first row, rs: byte distance between the four rows, x: first token's row, xb: token
 * stride (bytes), y: &y[t][first row], os: byte distance between the four outputs, yb: output token stride.
 */
@inline function k4x2<W>(x: usize, xb: usize, K: i32, w0: usize, rs: usize, y: usize, os: usize, yb: usize): void {
  const k8 = K & ~7;
  const mask = i32x4.splat(HI);
  const w1 = w0 + rs, w2 = w1 + rs, w3 = w2 + rs;
  const x1 = x + xb;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
  const end: usize = <usize>k8 * sizeof<W>();
  let xo: usize = 0;
  for (let off: usize = 0; off < end; off += 8 * sizeof<W>()) {
    const p = v128.load(x + xo), q = v128.load(x + xo, 16);
    const r = v128.load(x1 + xo), t = v128.load(x1 + xo, 16);
    let v = wraw<W>(w0 + off);
    let lo = wlo<W>(w0 + off, v), hi = whi<W>(w0 + off, v, mask);
    a0 = step(a0, lo, hi, p, q);
    b0 = step(b0, lo, hi, r, t);
    v = wraw<W>(w1 + off);
    lo = wlo<W>(w1 + off, v); hi = whi<W>(w1 + off, v, mask);
    a1 = step(a1, lo, hi, p, q);
    b1 = step(b1, lo, hi, r, t);
    v = wraw<W>(w2 + off);
    lo = wlo<W>(w2 + off, v); hi = whi<W>(w2 + off, v, mask);
    a2 = step(a2, lo, hi, p, q);
    b2 = step(b2, lo, hi, r, t);
    v = wraw<W>(w3 + off);
    lo = wlo<W>(w3 + off, v); hi = whi<W>(w3 + off, v, mask);
    a3 = step(a3, lo, hi, p, q);
    b3 = step(b3, lo, hi, r, t);
    xo += 32;
  }
  store<f32>(y, finish<W>(a0, x, w0, k8, K));
  store<f32>(y + os, finish<W>(a1, x, w1, k8, K));
  store<f32>(y + 2 * os, finish<W>(a2, x, w2, k8, K));
  store<f32>(y + 3 * os, finish<W>(a3, x, w3, k8, K));
  store<f32>(y + yb, finish<W>(b0, x1, w0, k8, K));
  store<f32>(y + yb + os, finish<W>(b1, x1, w1, k8, K));
  store<f32>(y + yb + 2 * os, finish<W>(b2, x1, w2, k8, K));
  store<f32>(y + yb + 3 * os, finish<W>(b3, x1, w3, k8, K));
}

/** 4 rows × 1 token (the T = 1 kernel: DRAM-bandwidth bound). */
@inline function k4x1<W>(x: usize, K: i32, w0: usize, rs: usize, y: usize, os: usize): void {
  const k8 = K & ~7;
  const mask = i32x4.splat(HI);
  const w1 = w0 + rs, w2 = w1 + rs, w3 = w2 + rs;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  const end: usize = <usize>k8 * sizeof<W>();
  let xo: usize = 0;
  for (let off: usize = 0; off < end; off += 8 * sizeof<W>()) {
    const p = v128.load(x + xo), q = v128.load(x + xo, 16);
    let v = wraw<W>(w0 + off);
    a0 = step(a0, wlo<W>(w0 + off, v), whi<W>(w0 + off, v, mask), p, q);
    v = wraw<W>(w1 + off);
    a1 = step(a1, wlo<W>(w1 + off, v), whi<W>(w1 + off, v, mask), p, q);
    v = wraw<W>(w2 + off);
    a2 = step(a2, wlo<W>(w2 + off, v), whi<W>(w2 + off, v, mask), p, q);
    v = wraw<W>(w3 + off);
    a3 = step(a3, wlo<W>(w3 + off, v), whi<W>(w3 + off, v, mask), p, q);
    xo += 32;
  }
  store<f32>(y, finish<W>(a0, x, w0, k8, K));
  store<f32>(y + os, finish<W>(a1, x, w1, k8, K));
  store<f32>(y + 2 * os, finish<W>(a2, x, w2, k8, K));
  store<f32>(y + 3 * os, finish<W>(a3, x, w3, k8, K));
}

/** 1 row × 2 tokens (leftover rows). */
@inline function k1x2<W>(x: usize, xb: usize, K: i32, w0: usize, y: usize, yb: usize): void {
  const k8 = K & ~7;
  const mask = i32x4.splat(HI);
  const x1 = x + xb;
  let a0 = f32x4.splat(0), b0 = f32x4.splat(0);
  const end: usize = <usize>k8 * sizeof<W>();
  let xo: usize = 0;
  for (let off: usize = 0; off < end; off += 8 * sizeof<W>()) {
    const v = wraw<W>(w0 + off);
    const lo = wlo<W>(w0 + off, v), hi = whi<W>(w0 + off, v, mask);
    a0 = step(a0, lo, hi, v128.load(x + xo), v128.load(x + xo, 16));
    b0 = step(b0, lo, hi, v128.load(x1 + xo), v128.load(x1 + xo, 16));
    xo += 32;
  }
  store<f32>(y, finish<W>(a0, x, w0, k8, K));
  store<f32>(y + yb, finish<W>(b0, x1, w0, k8, K));
}

/** 1 row × 1 token (leftovers). */
@inline function k1x1<W>(x: usize, K: i32, w0: usize, y: usize): void {
  const k8 = K & ~7;
  const mask = i32x4.splat(HI);
  let a0 = f32x4.splat(0);
  const end: usize = <usize>k8 * sizeof<W>();
  let xo: usize = 0;
  for (let off: usize = 0; off < end; off += 8 * sizeof<W>()) {
    const v = wraw<W>(w0 + off);
    a0 = step(a0, wlo<W>(w0 + off, v), whi<W>(w0 + off, v, mask), v128.load(x + xo), v128.load(x + xo, 16));
    xo += 32;
  }
  store<f32>(y, finish<W>(a0, x, w0, k8, K));
}

/**
 * y[t, r] for t < T, r < rows. x: [T, K] f32 (token stride K·4 bytes; permuted by `permute_x` for bf16),
 * w: first of `rows` weight rows (stride K·sizeof(W) bytes), y: &out[0][first row], token stride ldy elements.
 * Rows r, r + q, r + 2q, r + 3q (q = ⌊rows / 4⌋) go through the 4-row kernels, each for all tokens in pairs
 * while those four rows stay in L1/L2 (so every weight byte comes from DRAM once per call); rows 4q.. are leftovers.
 */
@inline function linear<W>(x: usize, T: i32, K: i32, w: usize, rows: i32, y: usize, ldy: i32): void {
  const rb: usize = <usize>K * sizeof<W>();
  const xb: usize = <usize>K << 2;
  const yb: usize = <usize>ldy << 2;
  const q = rows >> 2;
  const rs: usize = <usize>q * rb;
  const os: usize = <usize>q << 2;
  for (let r = 0; r < q; r++) {
    const wr = w + <usize>r * rb;
    const yr = y + (<usize>r << 2);
    let t = 0;
    for (; t + 2 <= T; t += 2) k4x2<W>(x + <usize>t * xb, xb, K, wr, rs, yr + <usize>t * yb, os, yb);
    if (t < T) k4x1<W>(x + <usize>t * xb, K, wr, rs, yr + <usize>t * yb, os);
  }
  for (let r = q << 2; r < rows; r++) {
    const wr = w + <usize>r * rb;
    const yr = y + (<usize>r << 2);
    let t = 0;
    for (; t + 2 <= T; t += 2) k1x2<W>(x + <usize>t * xb, xb, K, wr, yr + <usize>t * yb, yb);
    if (t < T) k1x1<W>(x + <usize>t * xb, K, wr, yr + <usize>t * yb);
  }
}

export function linear_f32(x: usize, T: i32, K: i32, w: usize, rows: i32, y: usize, ldy: i32): void {
  linear<f32>(x, T, K, w, rows, y, ldy);
}

export function linear_bf16(x: usize, T: i32, K: i32, w: usize, rows: i32, y: usize, ldy: i32): void {
  linear<u16>(x, T, K, w, rows, y, ldy);
}

/** In place: each full 8-block of every x row [x0..x7] becomes [x0 x2 x4 x6 x1 x3 x5 x7] (for the bf16 kernel). */
export function permute_x(x: usize, T: i32, K: i32): void {
  const k8 = K & ~7;
  const xb: usize = <usize>K << 2;
  for (let t = 0; t < T; t++) {
    let p = x + <usize>t * xb;
    const end = p + (<usize>k8 << 2);
    while (p < end) {
      const lo = v128.load(p);
      const hi = v128.load(p, 16);
      v128.store(p, i32x4.shuffle(lo, hi, 0, 2, 4, 6));
      v128.store(p, i32x4.shuffle(lo, hi, 1, 3, 5, 7), 16);
      p += 32;
    }
  }
}
