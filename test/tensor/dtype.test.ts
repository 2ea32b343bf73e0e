/**
 * Conversions in src/tensor/dtype.ts, checked exhaustively over all 65536 half / bfloat16 bit patterns against
 * decoders and a nearest-value oracle written here from the IEEE definitions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bf16ArrayToF32, bf16ToF32, f16ArrayToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../src/tensor/dtype.js';
import { makeRng } from '../../src/infer/sampling.js';

// ---- independent reference code -------------------------------------------------------------------------

/** IEEE binary16 → number, from the definition (sign, 5-bit exponent with bias 15, 10-bit fraction). */
function refF16(h: number): number {
  const sign = h >> 15 ? -1 : 1;
  const exp = (h >> 10) & 31;
  const frac = h & 1023;
  if (exp === 31) return frac === 0 ? sign * Infinity : NaN;
  if (exp === 0) return sign * frac * Math.pow(2, -24);
  return sign * (1024 + frac) * Math.pow(2, exp - 25);
}

/** bfloat16 → number (sign, 8-bit exponent with bias 127, 7-bit fraction). */
function refBf16(b: number): number {
  const sign = b >> 15 ? -1 : 1;
  const exp = (b >> 7) & 255;
  const frac = b & 127;
  if (exp === 255) return frac === 0 ? sign * Infinity : NaN;
  if (exp === 0) return sign * frac * Math.pow(2, -133);
  return sign * (128 + frac) * Math.pow(2, exp - 134);
}

const isNaN16 = (h: number): boolean => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
const isNaNBf = (b: number): boolean => (b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0;

const fb = new Float32Array(1);
const ub = new Uint32Array(fb.buffer);
/** Next float32 up / down in magnitude for a positive finite float32 (bit arithmetic). */
function f32Step(x: number, dir: 1 | -1): number {
  fb[0] = x;
  ub[0] = ub[0]! + dir;
  return fb[0]!;
}
function f32FromBits(u: number): number {
  ub[0] = u >>> 0;
  return fb[0]!;
}

const rng = makeRng;

/**
 * Round-to-nearest-even oracle for a positive-magnitude table of representable values sorted ascending
 * (index = bit pattern): returns the bit pattern nearest to |x|, ties to the even pattern; beyond the largest
 * finite value, values at or past the midpoint to the next power step round to infinity.
 */
function oracle(x: number, table: Float64Array, maxFinite: number, overflowAt: number, infBits: number, signBit: number): number {
  const s = x < 0 || Object.is(x, -0) ? signBit : 0;
  const a = Math.abs(x);
  if (a >= overflowAt) return s | infBits;
  let lo = 0;
  let hi = maxFinite; // table[lo] <= a < ... search largest index with table[i] <= a
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (table[mid]! <= a) lo = mid;
    else hi = mid - 1;
  }
  if (lo === maxFinite) return s | lo; // a < overflowAt, so nearest is the largest finite value
  const dLo = a - table[lo]!;
  const dHi = table[lo + 1]! - a;
  if (dLo < dHi) return s | lo;
  if (dHi < dLo) return s | (lo + 1);
  return s | (lo % 2 === 0 ? lo : lo + 1);
}

const F16_POS = Float64Array.from({ length: 0x7c00 }, (_, i) => refF16(i)); // 0 .. 65504
const BF16_POS = Float64Array.from({ length: 0x7f80 }, (_, i) => refBf16(i)); // 0 .. max finite

// ---- f16 ------------------------------------------------------------------------------------------------

test('f16ToF32 matches the IEEE definition for all 65536 bit patterns', () => {
  for (let h = 0; h < 65536; h++) {
    const got = f16ToF32(h);
    const want = refF16(h);
    if (isNaN16(h)) assert.ok(Number.isNaN(got), `0x${h.toString(16)} should be NaN`);
    else if (!Object.is(got, want)) assert.fail(`f16ToF32(0x${h.toString(16)}) = ${got}, want ${want}`);
  }
});

test('f16ToF32 known values', () => {
  assert.equal(f16ToF32(0x3c00), 1);
  assert.equal(f16ToF32(0xc000), -2);
  assert.equal(f16ToF32(0x7bff), 65504);
  assert.equal(f16ToF32(0x0001), 5.960464477539063e-8);
  assert.equal(f16ToF32(0x03ff), 0.00006097555160522461);
  assert.equal(f16ToF32(0x0400), 0.00006103515625);
  assert.equal(f16ToF32(0x3555), 0.333251953125);
  assert.equal(f16ToF32(0x7c00), Infinity);
  assert.equal(f16ToF32(0xfc00), -Infinity);
  assert.ok(Object.is(f16ToF32(0x8000), -0));
  assert.ok(Object.is(f16ToF32(0x0000), 0));
  assert.ok(Number.isNaN(f16ToF32(0x7e00)));
});

test('f16ArrayToF32 matches f16ToF32 for all 65536 bit patterns', () => {
  const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const out = f16ArrayToF32(all);
  for (let h = 0; h < 65536; h++) {
    const want = Math.fround(refF16(h));
    if (isNaN16(h)) assert.ok(Number.isNaN(out[h]!));
    else if (!Object.is(out[h]!, want)) assert.fail(`f16ArrayToF32[0x${h.toString(16)}] = ${out[h]}, want ${want}`);
  }
  // into a caller-provided destination, with an offset view
  const dst = new Float32Array(10);
  f16ArrayToF32(Uint16Array.of(0x3c00, 0xc000), dst.subarray(3, 5));
  assert.deepEqual([...dst.subarray(2, 6)], [0, 1, -2, 0]);
});

test('f32ToF16(f16ToF32(h)) === h for every non-NaN half; NaN stays NaN', () => {
  for (let h = 0; h < 65536; h++) {
    const back = f32ToF16(f16ToF32(h));
    if (isNaN16(h)) {
      // (f16ToF32 returns a JS NaN, whose sign and payload are not observable, so only NaN-ness is kept)
      assert.ok(isNaN16(back), `NaN 0x${h.toString(16)} came back as 0x${back.toString(16)}`);
    } else if (back !== h) {
      assert.fail(`0x${h.toString(16)} → ${f16ToF32(h)} → 0x${back.toString(16)}`);
    }
  }
});

test('f32ToF16 rounds every midpoint between adjacent halves to even, and neighbours to nearest', () => {
  for (let h = 0; h < 0x7bff; h++) {
    const a = refF16(h);
    const b = refF16(h + 1);
    const mid = (a + b) / 2;
    assert.equal(Math.fround(mid), mid, 'midpoints between halves are float32 values');
    const even = h % 2 === 0 ? h : h + 1;
    for (const s of [0, 0x8000]) {
      const sg = s ? -1 : 1;
      const got = f32ToF16(sg * mid);
      if (got !== (s | even)) assert.fail(`tie ${sg * mid} → 0x${got.toString(16)}, want 0x${(s | even).toString(16)}`);
      const up = f32ToF16(sg * f32Step(mid, 1));
      if (up !== (s | (h + 1))) assert.fail(`just above ${sg * mid} → 0x${up.toString(16)}`);
      const down = f32ToF16(sg * f32Step(mid, -1));
      if (down !== (s | h)) assert.fail(`just below ${sg * mid} → 0x${down.toString(16)}`);
    }
  }
});

test('f32ToF16 overflow, underflow, infinities, NaN', () => {
  assert.equal(f32ToF16(65504), 0x7bff);
  assert.equal(f32ToF16(65519.99609375), 0x7bff); // largest float32 below the 65520 midpoint
  assert.equal(f32ToF16(65520), 0x7c00); // tie between 65504 (odd) and 2^16 → even → infinity
  assert.equal(f32ToF16(-65520), 0xfc00);
  assert.equal(f32ToF16(65536), 0x7c00);
  assert.equal(f32ToF16(1e6), 0x7c00);
  assert.equal(f32ToF16(3.4028234663852886e38), 0x7c00);
  assert.equal(f32ToF16(Infinity), 0x7c00);
  assert.equal(f32ToF16(-Infinity), 0xfc00);
  assert.ok(isNaN16(f32ToF16(NaN)));
  assert.ok(isNaN16(f32ToF16(f32FromBits(0x7f800001))), 'signalling NaN stays NaN, not infinity');
  assert.ok(isNaN16(f32ToF16(f32FromBits(0xffc00000))));
  // underflow
  assert.equal(f32ToF16(2 ** -25), 0x0000); // tie between 0 and the smallest subnormal → 0
  assert.equal(f32ToF16(f32Step(2 ** -25, 1)), 0x0001);
  assert.equal(f32ToF16(2 ** -24 * 1.5), 0x0002); // tie between 1 and 2 subnormal units → 2 (even)
  assert.equal(f32ToF16(2 ** -24 * 2.5), 0x0002);
  assert.equal(f32ToF16(2 ** -26), 0x0000);
  assert.equal(f32ToF16(-(2 ** -26)), 0x8000);
  assert.equal(f32ToF16(1e-45), 0x0000); // float32 subnormal
  assert.equal(f32ToF16(-1e-45), 0x8000);
  assert.equal(f32ToF16(0), 0x0000);
  assert.equal(f32ToF16(-0), 0x8000);
  // subnormal → normal carry
  assert.equal(f32ToF16(2 ** -14 - 2 ** -25), 0x0400); // tie between 0x03ff (odd) and 0x0400
  assert.equal(f32ToF16(f32Step(2 ** -14 - 2 ** -25, -1)), 0x03ff);
  // mantissa carry into the exponent
  assert.equal(f32ToF16(2 - 2 ** -11), 0x4000);
  assert.equal(f32ToF16(1 + 2 ** -11), 0x3c00); // tie → even (1.0)
  assert.equal(f32ToF16(1 + 3 * 2 ** -11), 0x3c02); // tie → even (1 + 2^-9)
});

test('f32ToF16 matches the nearest-even oracle on 300k seeded random float32 values', () => {
  const r = rng(0x5eed16);
  for (let i = 0; i < 300_000; i++) {
    // half the draws are arbitrary bit patterns, half concentrate on the half range (|x| < 2^17)
    const bits = i % 2 ? Math.floor(r() * 2 ** 32) : ((r() < 0.5 ? 0x80000000 : 0) | Math.floor(r() * (0x48000000 - 0x33000000) + 0x33000000)) >>> 0;
    const x = f32FromBits(bits);
    if (Number.isNaN(x)) continue;
    const got = f32ToF16(x);
    const want = oracle(x, F16_POS, 0x7bff, 65520, 0x7c00, 0x8000);
    if (got !== want) assert.fail(`f32ToF16(${x}) [bits 0x${bits.toString(16)}] = 0x${got.toString(16)}, want 0x${want.toString(16)}`);
  }
});

// ---- bf16 -----------------------------------------------------------------------------------------------

test('bf16ToF32 matches the definition for all 65536 bit patterns', () => {
  for (let b = 0; b < 65536; b++) {
    const got = bf16ToF32(b);
    if (isNaNBf(b)) assert.ok(Number.isNaN(got));
    else if (!Object.is(got, refBf16(b))) assert.fail(`bf16ToF32(0x${b.toString(16)}) = ${got}, want ${refBf16(b)}`);
  }
  assert.equal(bf16ToF32(0x3f80), 1);
  assert.equal(bf16ToF32(0xbf80), -1);
  assert.equal(bf16ToF32(0x4049), 3.140625);
  assert.equal(bf16ToF32(0x7f7f), 3.3895313892515355e38);
  assert.equal(bf16ToF32(0x0001), 2 ** -133);
  assert.equal(bf16ToF32(0x7f80), Infinity);
  assert.ok(Object.is(bf16ToF32(0x8000), -0));
});

test('bf16ArrayToF32 matches the definition for all 65536 bit patterns', () => {
  const out = bf16ArrayToF32(Uint16Array.from({ length: 65536 }, (_, i) => i));
  for (let b = 0; b < 65536; b++) {
    if (isNaNBf(b)) assert.ok(Number.isNaN(out[b]!));
    else if (!Object.is(out[b]!, refBf16(b))) assert.fail(`bf16ArrayToF32[0x${b.toString(16)}] = ${out[b]}`);
  }
});

test('f32ToBf16(bf16ToF32(b)) === b for every non-NaN bfloat16; NaN stays NaN', () => {
  for (let b = 0; b < 65536; b++) {
    const back = f32ToBf16(bf16ToF32(b));
    if (isNaNBf(b)) {
      assert.ok(isNaNBf(back), `NaN 0x${b.toString(16)} came back as 0x${back.toString(16)}`);
    } else if (back !== b) {
      assert.fail(`0x${b.toString(16)} → 0x${back.toString(16)}`);
    }
  }
  // NaN whose payload sits only in the low 16 bits must not become infinity
  assert.ok(isNaNBf(f32ToBf16(f32FromBits(0x7f800001))));
  assert.ok(isNaNBf(f32ToBf16(f32FromBits(0xff800001))));
});

test('f32ToBf16 rounds every midpoint to even and neighbours to nearest (round-to-nearest-even)', () => {
  for (let b = 0; b < 0x7f7f; b++) {
    const a = refBf16(b);
    const c = refBf16(b + 1);
    const mid = (a + c) / 2;
    assert.equal(Math.fround(mid), mid);
    const even = b % 2 === 0 ? b : b + 1;
    for (const s of [0, 0x8000]) {
      const sg = s ? -1 : 1;
      const got = f32ToBf16(sg * mid);
      if (got !== (s | even)) assert.fail(`tie ${sg * mid} → 0x${got.toString(16)}, want 0x${(s | even).toString(16)}`);
      if (f32ToBf16(sg * f32Step(mid, 1)) !== (s | (b + 1))) assert.fail(`just above ${sg * mid}`);
      if (f32ToBf16(sg * f32Step(mid, -1)) !== (s | b)) assert.fail(`just below ${sg * mid}`);
    }
  }
  // overflow: the midpoint above the largest finite bf16 (odd pattern 0x7f7f) ties to infinity
  assert.equal(f32ToBf16(f32FromBits(0x7f7f8000)), 0x7f80);
  assert.equal(f32ToBf16(f32FromBits(0x7f7f7fff)), 0x7f7f);
  assert.equal(f32ToBf16(3.4028234663852886e38), 0x7f80);
  assert.equal(f32ToBf16(-Infinity), 0xff80);
  assert.equal(f32ToBf16(-0), 0x8000);
  assert.equal(f32ToBf16(1 + 2 ** -8), 0x3f80); // tie → even
  assert.equal(f32ToBf16(1 + 3 * 2 ** -8), 0x3f82); // tie → even
});

test('f32ToBf16 matches the nearest-even oracle on 300k seeded random float32 values', () => {
  const r = rng(0xbf16);
  const overflowAt = (refBf16(0x7f7f) + 2 ** 128) / 2;
  for (let i = 0; i < 300_000; i++) {
    const x = f32FromBits(Math.floor(r() * 2 ** 32));
    if (Number.isNaN(x)) continue;
    const got = f32ToBf16(x);
    const want = oracle(x, BF16_POS, 0x7f7f, overflowAt, 0x7f80, 0x8000);
    if (got !== want) assert.fail(`f32ToBf16(${x}) = 0x${got.toString(16)}, want 0x${want.toString(16)}`);
  }
});
