/** Access to the Hugging Face reference fixtures in ../shared/fixtures/hf (tests only). */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import assert from 'node:assert/strict';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { FileSource } from '../../src/io/file-source.js';

export const FIXTURES = resolve(process.env['SWITCHYARD_FIXTURES'] ?? '../shared/fixtures/hf');

export function fixtureNames(): string[] {
  if (!existsSync(FIXTURES)) throw new Error(`fixtures not found at ${FIXTURES} (set SWITCHYARD_FIXTURES)`);
  return readdirSync(FIXTURES).filter((n) => statSync(join(FIXTURES, n)).isDirectory()).sort();
}

export interface FixtureMeta {
  batch: number; seq: number; gen_prompt: number; gen_new: number;
  min_router_topk_gap?: number; min_generation_top2_gap?: number; keys: string[];
  [k: string]: unknown;
}

export class Fixture {
  readonly dir: string;
  readonly meta: FixtureMeta;
  readonly io: SafetensorsFile;
  constructor(readonly name: string) {
    this.dir = join(FIXTURES, name);
    this.meta = JSON.parse(readFileSync(join(this.dir, 'meta.json'), 'utf8')) as FixtureMeta;
    this.io = new SafetensorsFile(new FileSource(join(this.dir, 'io.safetensors')));
  }
  has(key: string): boolean {
    return this.io.tensors.has(key);
  }
  shape(key: string): readonly number[] {
    return this.io.info(key).shape;
  }
  f32(key: string): Float32Array {
    const info = this.io.info(key);
    const b = this.io.bytes(key);
    if (info.dtype === 'F32') return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
    if (info.dtype === 'F64') return Float32Array.from(new Float64Array(b.buffer, b.byteOffset, b.byteLength / 8));
    throw new Error(`${key} is ${info.dtype}`);
  }
  ints(key: string): number[] {
    const info = this.io.info(key);
    const b = this.io.bytes(key);
    if (info.dtype === 'I64') return Array.from(new BigInt64Array(b.buffer, b.byteOffset, b.byteLength / 8), Number);
    if (info.dtype === 'I32') return Array.from(new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4));
    throw new Error(`${key} is ${info.dtype}`);
  }
}

/**
 * Assert that `got` ([T, k] expert ids of MoE layer l, any order within a token) picks the same expert set per token
 * as the fixture's reference router output for that layer (the integer [T, k] `router_out{j}.l`).
 */
export function assertSameTopK(fx: Fixture, l: number, k: number, got: ArrayLike<number>): void {
  const key = [0, 1, 2].map((j) => `router_out${j}.${l}`)
    .find((n) => fx.has(n) && fx.io.info(n).dtype === 'I64' && fx.shape(n).at(-1) === k);
  assert.ok(key, `no integer [T, ${k}] router output for layer ${l}`);
  const ref = fx.ints(key);
  const T = ref.length / k;
  assert.equal(got.length, T * k, `layer ${l}: ${got.length} expert ids for ${T} tokens × ${k}`);
  for (let t = 0; t < T; t++) {
    const g = Array.from({ length: k }, (_, j) => got[t * k + j]!).sort((a, b) => a - b);
    const w = ref.slice(t * k, t * k + k).sort((a, b) => a - b);
    assert.deepEqual(g, w, `layer ${l} token ${t}`);
  }
}

/** Largest |a − b| and where it happens. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; at: number } {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let max = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= max)) { max = d; at = i; }
  }
  return { max, at };
}
