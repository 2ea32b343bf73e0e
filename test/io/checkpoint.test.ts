/**
 * Checkpoint / readConfig: clear one-line UserErrors for every bad folder, sharded checkpoints through
 * model.safetensors.index.json, and f16/bf16 → f32 conversion in weight() against values worked out here.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Checkpoint, readConfig } from '../../src/io/checkpoint.js';
import { encodeSafetensors, type TensorToWrite } from '../../src/io/safetensors.js';
import { SafetensorsError } from '../../src/util/errors.js';
import { userError } from '../helpers/user-error.js';

const root = mkdtempSync(join(tmpdir(), 'switchyard-ckpt-'));
after(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;
/** A fresh folder under the temp root holding the given files (strings, bytes or tensors to encode). */
function folder(files: Record<string, string | Uint8Array | Record<string, TensorToWrite>>): string {
  const d = join(root, `m${counter++}`);
  mkdirSync(d);
  for (const [name, content] of Object.entries(files)) {
    const bytes = typeof content === 'string' || content instanceof Uint8Array ? content : encodeSafetensors(content);
    writeFileSync(join(d, name), bytes);
  }
  return d;
}


const CONFIG = JSON.stringify({ model_type: 'mixtral', hidden_size: 4 });
const f32 = (...v: number[]) => Float32Array.from(v);
const W = (shape: number[], data: ArrayBufferView, dtype = 'F32'): TensorToWrite => ({ dtype, shape, data });

// ---- readConfig -----------------------------------------------------------------------------------------

test('readConfig: missing folder', () => {
  const p = join(root, 'does-not-exist');
  userError(() => readConfig(p), new RegExp(`model folder ${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} does not exist`));
});

test('readConfig: a file instead of a folder', () => {
  const d = folder({ 'x.txt': 'hi' });
  userError(() => readConfig(join(d, 'x.txt')), /x\.txt is not a folder/);
});

test('readConfig: folder without config.json', () => {
  const d = folder({});
  userError(() => readConfig(d), /has no config\.json/);
});

test('readConfig: invalid JSON config (multi-line file, one-line message)', () => {
  const d = folder({ 'config.json': '{\n  "model_type": "mixtral",\n  oops\n}\n' });
  userError(() => readConfig(d), /config\.json is not valid JSON/);
});

test('readConfig: JSON that is not an object', () => {
  for (const text of ['[1,2]', 'null', '"mixtral"', '3']) userError(() => readConfig(folder({ 'config.json': text })), /config\.json is not a JSON object/);
});

test('readConfig: config.json that is a folder', () => {
  const d = folder({});
  mkdirSync(join(d, 'config.json'));
  userError(() => readConfig(d), /config\.json is not a regular file \(a folder\)/);
});

test('readConfig: a valid config', () => {
  assert.deepEqual(readConfig(folder({ 'config.json': CONFIG })), { model_type: 'mixtral', hidden_size: 4 });
});

// ---- Checkpoint errors ----------------------------------------------------------------------------------

test('Checkpoint: missing folder, and a file instead of a folder', () => {
  userError(() => new Checkpoint(join(root, 'nope')), /model folder .*nope does not exist/);
  const d = folder({ 'model.safetensors': { a: W([1], f32(1)) } });
  userError(() => new Checkpoint(join(d, 'model.safetensors')), /model\.safetensors is not a folder/);
});

test('Checkpoint: no safetensors files (io/grads fixtures files do not count)', () => {
  userError(() => new Checkpoint(folder({ 'config.json': CONFIG })), /has no model \.safetensors files/);
  userError(() => new Checkpoint(folder({ 'config.json': CONFIG, 'io.safetensors': { a: W([1], f32(1)) }, 'grads.safetensors': { g: W([1], f32(1)) } })), /has no model \.safetensors files/);
});

test('Checkpoint: a corrupt safetensors file is a SafetensorsError naming the file', () => {
  const good = encodeSafetensors({ a: W([4], f32(1, 2, 3, 4)) });
  const d = folder({ 'model.safetensors': good.subarray(0, good.length - 3) });
  const e = userError(() => new Checkpoint(d), /model\.safetensors: tensor a .*truncated/);
  assert.ok(e instanceof SafetensorsError);
});

test('Checkpoint: a missing tensor is named', () => {
  const ck = new Checkpoint(folder({ 'model.safetensors': { a: W([1], f32(1)) } }));
  try {
    assert.equal(ck.has('model.layers.3.mlp.gate.weight'), false);
    userError(() => ck.weight('model.layers.3.mlp.gate.weight'), /is missing tensor model\.layers\.3\.mlp\.gate\.weight/);
    userError(() => ck.info('lm_head.weight'), /missing tensor lm_head\.weight/);
  } finally {
    ck.close();
  }
});

test('Checkpoint: a tensor of the wrong shape names the tensor and both shapes', () => {
  const ck = new Checkpoint(folder({ 'model.safetensors': { 'q.weight': W([2, 3], new Float32Array(6)) } }));
  try {
    userError(() => ck.weight('q.weight', { shape: [3, 2] }), /tensor q\.weight has shape \[2, 3\], expected \[3, 2\]/);
    userError(() => ck.weight('q.weight', { shape: [6] }), /tensor q\.weight has shape \[2, 3\], expected \[6\]/);
    userError(() => ck.weight('q.weight', { shape: [2, 3, 1] }), /has shape \[2, 3\], expected \[2, 3, 1\]/);
    assert.deepEqual(ck.weight('q.weight', { shape: [2, 3] }).shape, [2, 3]);
  } finally {
    ck.close();
  }
});

test('Checkpoint: unsupported dtypes are named', () => {
  const ck = new Checkpoint(folder({
    'model.safetensors': { ids: W([2], BigInt64Array.of(1n, 2n), 'I64'), mask: W([3], Uint8Array.of(1, 0, 1), 'BOOL'), d: W([1], Float64Array.of(1), 'F64') },
  }));
  try {
    userError(() => ck.weight('ids'), /tensor ids has dtype I64; weights must be F32, F16 or BF16/);
    userError(() => ck.weight('mask'), /tensor mask has dtype BOOL/);
    userError(() => ck.weight('d', { shape: [1] }), /tensor d has dtype F64/);
    assert.equal(ck.info('ids').dtype, 'I64', 'info() still works for any dtype');
  } finally {
    ck.close();
  }
});

test('Checkpoint: a tensor in two files is an error naming both', () => {
  const d = folder({ 'model-00001-of-00002.safetensors': { x: W([1], f32(1)) }, 'model-00002-of-00002.safetensors': { x: W([1], f32(2)) } });
  userError(() => new Checkpoint(d), /tensor x is in both .*model-00001-of-00002\.safetensors and .*model-00002-of-00002\.safetensors/);
});

test('Checkpoint: only model*.safetensors files are weights (caches and references beside them are ignored)', () => {
  const d = folder({ 'model.safetensors': { x: W([1], f32(1)) }, 'tokens.safetensors': { y: W([1], f32(2)) } });
  const ck = new Checkpoint(d);
  assert.deepEqual(ck.names(), ['x']);
  ck.close();
});

// ---- sharded checkpoints --------------------------------------------------------------------------------

function shardedFolder(extra: Record<string, string> = {}): string {
  const shard1 = { 'model.embed_tokens.weight': W([2, 2], f32(1, 2, 3, 4)), 'model.layers.0.w': W([3], f32(5, 6, 7)) };
  const shard2 = { 'model.layers.1.w': W([1, 2], Uint16Array.of(0x3f80, 0xc000), 'BF16'), 'lm_head.weight': W([2], Uint16Array.of(0x3c00, 0x3800), 'F16') };
  const index = {
    metadata: { total_size: 16 + 12 + 4 + 4 },
    weight_map: {
      'model.embed_tokens.weight': 'model-00001-of-00002.safetensors',
      'model.layers.0.w': 'model-00001-of-00002.safetensors',
      'model.layers.1.w': 'model-00002-of-00002.safetensors',
      'lm_head.weight': 'model-00002-of-00002.safetensors',
    },
  };
  return folder({
    'config.json': CONFIG,
    'model-00001-of-00002.safetensors': shard1,
    'model-00002-of-00002.safetensors': shard2,
    'model.safetensors.index.json': JSON.stringify(index),
    ...extra,
  });
}

test('sharded checkpoint through model.safetensors.index.json', () => {
  // a stray file that is not in the index must be ignored
  const d = shardedFolder();
  writeFileSync(join(d, 'stray.safetensors'), encodeSafetensors({ 'model.embed_tokens.weight': W([1], f32(9)) }));
  const ck = new Checkpoint(d);
  try {
    assert.deepEqual(ck.names().sort(), ['lm_head.weight', 'model.embed_tokens.weight', 'model.layers.0.w', 'model.layers.1.w']);
    assert.deepEqual([...ck.weight('model.embed_tokens.weight', { shape: [2, 2] }).data], [1, 2, 3, 4]);
    assert.deepEqual([...ck.weight('model.layers.0.w').data], [5, 6, 7]);
    const l1 = ck.weight('model.layers.1.w');
    assert.equal(l1.dtype, 'f32');
    assert.deepEqual([...l1.data], [1, -2]);
    const l1b = ck.weight('model.layers.1.w', { keepBf16: true });
    assert.equal(l1b.dtype, 'bf16');
    assert.deepEqual([...l1b.data], [0x3f80, 0xc000]);
    assert.deepEqual([...ck.weight('lm_head.weight', { keepBf16: true }).data], [1, 0.5], 'F16 is always widened to f32');
    assert.equal(ck.weight('lm_head.weight', { keepBf16: true }).dtype, 'f32');
    assert.match(ck.info('model.layers.1.w').dtype, /^BF16$/);
  } finally {
    ck.close();
  }
});

test('sharded checkpoint: broken index files are clear UserErrors', () => {
  const d = shardedFolder();
  const idx = join(d, 'model.safetensors.index.json');
  writeFileSync(idx, '{"weight_map": {\n');
  userError(() => new Checkpoint(d), /model\.safetensors\.index\.json is not valid JSON/);
  for (const text of ['null', '[]', '{}', '{"weight_map": 3}', '{"weight_map": null}', '{"weight_map": ["a"]}']) {
    writeFileSync(idx, text);
    userError(() => new Checkpoint(d), /model\.safetensors\.index\.json has no weight_map object/);
  }
  writeFileSync(idx, JSON.stringify({ weight_map: {} }));
  userError(() => new Checkpoint(d), /has no model \.safetensors files/);
  for (const bad of [3, null, '', '../model-00001-of-00002.safetensors', '/etc/passwd', 'sub/x.safetensors', '..', '.']) {
    writeFileSync(idx, JSON.stringify({ weight_map: { a: bad } }));
    userError(() => new Checkpoint(d), /weight_map entry a must name a shard file in the same folder/);
  }
});

test('sharded checkpoint: a missing shard, and an index that disagrees with the shards', () => {
  const d = shardedFolder();
  const idx = join(d, 'model.safetensors.index.json');
  writeFileSync(idx, JSON.stringify({ weight_map: { x: 'model-00001-of-00002.safetensors', y: 'model-00003-of-00003.safetensors' } }));
  userError(() => new Checkpoint(d), /lists shard model-00003-of-00003\.safetensors, which is not in/);
  writeFileSync(idx, JSON.stringify({ weight_map: { 'model.layers.9.w': 'model-00001-of-00002.safetensors' } }));
  userError(() => new Checkpoint(d), /puts tensor model\.layers\.9\.w in model-00001-of-00002\.safetensors, but model-00001-of-00002\.safetensors has no such tensor/);
  writeFileSync(idx, JSON.stringify({ weight_map: { 'lm_head.weight': 'model-00001-of-00002.safetensors', 'model.layers.1.w': 'model-00002-of-00002.safetensors' } }));
  userError(() => new Checkpoint(d), /puts tensor lm_head\.weight in model-00001-of-00002\.safetensors, but it is in model-00002-of-00002\.safetensors/);
});

// ---- dtype conversion in weight() -----------------------------------------------------------------------

/** bfloat16 bits → value, from the definition (not via float32 bit tricks). */
function bf16Value(b: number): number {
  const sign = b & 0x8000 ? -1 : 1;
  const e = (b >> 7) & 0xff;
  const m = b & 0x7f;
  if (e === 0xff) return m ? NaN : sign * Infinity;
  return e === 0 ? sign * m * 2 ** -133 : sign * (1 + m / 128) * 2 ** (e - 127);
}

/** IEEE half bits → value, from the definition. */
function f16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return e === 0 ? sign * m * 2 ** -24 : sign * (1 + m / 1024) * 2 ** (e - 15);
}

function same(got: number, want: number, what: string): void {
  if (Number.isNaN(want)) assert.ok(Number.isNaN(got), `${what}: ${got} should be NaN`);
  else assert.ok(Object.is(got, want), `${what}: got ${got}, want ${want}`);
}

test('weight(): bf16 → f32 widening of known bit patterns', () => {
  const cases: Array<[number, number]> = [
    [0x3f80, 1], [0xbf80, -1], [0x4000, 2], [0x3f00, 0.5], [0x4049, 3.140625], [0x0000, 0], [0x8000, -0],
    [0x0001, 2 ** -133], [0x8001, -(2 ** -133)], [0x007f, 127 * 2 ** -133],
    [0x0080, 2 ** -126], [0x7f7f, 255 * 2 ** 120], [0x3dcd, 0.10009765625], [0xc2f7, -123.5],
  ];
  // (Inf and NaN patterns are refused at load: test/reliability/non-finite.test.ts)
  const bits = Uint16Array.from(cases.map((c) => c[0]));
  const ck = new Checkpoint(folder({ 'model.safetensors': { w: W([bits.length], bits, 'BF16') } }));
  try {
    const w = ck.weight('w', { shape: [bits.length] });
    assert.equal(w.dtype, 'f32');
    assert.ok(w.data instanceof Float32Array);
    cases.forEach(([b, v], i) => same(w.data[i]!, v, `bf16 0x${b.toString(16)}`));
    const kept = ck.weight('w', { keepBf16: true });
    assert.equal(kept.dtype, 'bf16');
    assert.ok(kept.data instanceof Uint16Array);
    assert.deepEqual([...kept.data], [...bits]);
  } finally {
    ck.close();
  }
});

test('weight(): f16 → f32 for known bit patterns', () => {
  const cases: Array<[number, number]> = [
    [0x3c00, 1], [0xbc00, -1], [0x4000, 2], [0xc000, -2], [0x3800, 0.5], [0x3555, 0.333251953125], [0x0000, 0], [0x8000, -0],
    [0x7bff, 65504], [0xfbff, -65504], [0x0001, 2 ** -24], [0x8001, -(2 ** -24)],
    [0x03ff, 1023 * 2 ** -24], [0x0400, 2 ** -14], [0x4248, 3.140625], [0x57b7, 123.4375],
  ];
  const bits = Uint16Array.from(cases.map((c) => c[0]));
  const ck = new Checkpoint(folder({ 'model.safetensors': { w: W([bits.length], bits, 'F16') } }));
  try {
    const w = ck.weight('w');
    assert.equal(w.dtype, 'f32');
    cases.forEach(([h, v], i) => same(w.data[i]!, v, `f16 0x${h.toString(16)}`));
  } finally {
    ck.close();
  }
});

test('weight(): every finite f16 and bf16 bit pattern widens to the value its definition gives (data at odd file offsets)', () => {
  // Inf/NaN patterns (exponent all ones) are refused at load (test/reliability/non-finite.test.ts); all the others.
  const fh = Uint16Array.from({ length: 65536 }, (_, i) => i).filter((i) => (i & 0x7c00) !== 0x7c00); // 63488 = 248 · 256
  const fb = Uint16Array.from({ length: 65536 }, (_, i) => i).filter((i) => (i & 0x7f80) !== 0x7f80); // 65024
  const ck = new Checkpoint(folder({ 'model.safetensors': { pad: W([3], Uint8Array.of(1, 2, 3), 'U8'), h: W([248, 256], fh, 'F16'), b: W([fb.length], fb, 'BF16') } }));
  try {
    const h = ck.weight('h', { shape: [248, 256] }).data;
    const b = ck.weight('b').data;
    fh.forEach((p, i) => { if (!Object.is(h[i]!, f16Value(p))) assert.fail(`f16 0x${p.toString(16)}: ${h[i]} vs ${f16Value(p)}`); });
    fb.forEach((p, i) => { if (!Object.is(b[i]!, bf16Value(p))) assert.fail(`bf16 0x${p.toString(16)}: ${b[i]} vs ${bf16Value(p)}`); });
  } finally {
    ck.close();
  }
});

test('weight(): F32 bytes come through unchanged, including odd data offsets in the file', () => {
  // a 1-byte tensor first puts the F32 data at an offset that is not a multiple of 4 within the data section
  const vals = Float32Array.of(1.5, -0, 3.4028234663852886e38, 1e-45, -3.4028234663852886e38);
  const ck = new Checkpoint(folder({ 'model.safetensors': { pad: W([1], Uint8Array.of(9), 'U8'), w: W([5], vals), e: W([0, 4], new Float32Array(0)) } }));
  try {
    const w = ck.weight('w');
    assert.equal(w.dtype, 'f32');
    assert.deepEqual([...w.data], [...vals]);
    assert.ok(Object.is(w.data[1], -0));
    const e = ck.weight('e', { shape: [0, 4] });
    assert.equal(e.data.length, 0);
    const bf = ck.weight('w', { keepBf16: true });
    assert.equal(bf.dtype, 'f32', 'keepBf16 leaves F32 tensors alone');
  } finally {
    ck.close();
  }
});
