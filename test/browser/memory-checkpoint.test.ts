/**
 * MemoryCheckpoint (the browser's checkpoint: files given as bytes) against the on-disk Checkpoint: same tensor
 * names, infos and Weights (bit for bit, f32 and bf16 fixtures, keepBf16 both ways), the same CPU logits when the
 * model is built from either; sharded checkpoints through an index; one-line UserErrors for bad inputs. Also
 * fetchCheckpoint (src/browser.ts) in Node against a local HTTP server: single file, index + shards, 404s.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Checkpoint, readConfig } from '../../src/io/checkpoint.js';
import { MemoryCheckpoint } from '../../src/io/memory-checkpoint.js';
import { encodeSafetensors, type TensorToWrite } from '../../src/io/safetensors.js';
import { specFor } from '../../src/models/registry.js';
import { CausalLM } from '../../src/models/causal-lm.js';
import { fetchCheckpoint } from '../../src/browser.js';
import { UserError } from '../../src/util/errors.js';
import { Fixture, FIXTURES } from '../helpers/fixtures.js';
import { userError } from '../helpers/user-error.js';


const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const fixtureFiles = (name: string): Map<string, Uint8Array> =>
  new Map(['config.json', 'model.safetensors', 'io.safetensors', 'meta.json'].map((f) => [f, new Uint8Array(readFileSync(join(FIXTURES, name, f)))]));

function sameWeights(a: Checkpoint, b: MemoryCheckpoint, keepBf16: boolean): void {
  assert.deepEqual(b.names().sort(), a.names().sort());
  for (const n of a.names()) {
    const ia = a.info(n);
    const ib = b.info(n);
    assert.deepEqual([ib.dtype, ib.shape, ib.offset, ib.byteLength], [ia.dtype, ia.shape, ia.offset, ia.byteLength], n);
    const wa = a.weight(n, { keepBf16 });
    const wb = b.weight(n, { keepBf16 });
    assert.equal(wb.dtype, wa.dtype, n);
    assert.deepEqual(wb.shape, wa.shape, n);
    assert.deepEqual(new Uint8Array(wb.data.buffer, wb.data.byteOffset, wb.data.byteLength), new Uint8Array(wa.data.buffer, wa.data.byteOffset, wa.data.byteLength), n);
  }
}

for (const name of ['qwen3_moe', 'qwen3_moe-bf16']) {
  test(`${name}: every tensor reads the same as from the folder (keepBf16 off and on)`, () => {
    const ck = new Checkpoint(join(FIXTURES, name));
    const mem = new MemoryCheckpoint(fixtureFiles(name), `fixtures/${name}`);
    try {
      // io.safetensors is not a weight file (only model*.safetensors are), as in the folder.
      assert.ok(!mem.has('logits'));
      assert.deepEqual(mem.config(), readConfig(join(FIXTURES, name)));
      assert.equal(mem.dir, `fixtures/${name}`);
      sameWeights(ck, mem, false);
      sameWeights(ck, mem, true);
    } finally {
      ck.close();
      mem.close();
    }
  });
}

test('qwen3_moe: the CPU model built from a MemoryCheckpoint gives the same logits as from the folder', () => {
  const fx = new Fixture('qwen3_moe');
  const ids = fx.ints('input_ids');
  const mem = new MemoryCheckpoint(fixtureFiles('qwen3_moe'));
  const ck = new Checkpoint(fx.dir);
  const a = new CausalLM(specFor(mem.config(), new Set(mem.names())), mem).forward(ids, fx.meta.batch).logits;
  const b = new CausalLM(specFor(readConfig(fx.dir), new Set(ck.names())), ck).forward(ids, fx.meta.batch).logits;
  ck.close();
  assert.deepEqual(a, b);
});

/** A two-shard checkpoint with an index, as bytes. */
function sharded(): Map<string, Uint8Array> {
  const t = (v: number[]): TensorToWrite => ({ dtype: 'F32', shape: [v.length], data: Float32Array.from(v) });
  const s1 = encodeSafetensors({ a: t([1, 2]), b: t([3]) });
  const s2 = encodeSafetensors({ c: t([4, 5, 6]) });
  const index = { metadata: {}, weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00001-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' } };
  return new Map([
    ['config.json', enc('{"model_type":"mixtral"}')],
    ['model.safetensors.index.json', enc(JSON.stringify(index))],
    ['model-00001-of-00002.safetensors', s1],
    ['model-00002-of-00002.safetensors', s2],
  ]);
}

test('sharded: tensors come from the shards the index names', () => {
  const mem = new MemoryCheckpoint(sharded(), 'https://host/m/');
  assert.deepEqual(mem.names().sort(), ['a', 'b', 'c']);
  assert.deepEqual(Array.from(mem.weight('c', { shape: [3] }).data), [4, 5, 6]);
  assert.deepEqual(mem.config(), { model_type: 'mixtral' });
  userError(() => mem.weight('c', { shape: [2] }), /tensor c has shape \[3\], expected \[2\]/);
  userError(() => mem.info('zz'), /checkpoint https:\/\/host\/m\/ is missing tensor zz/);
});

test('sharded without an index: model-0000i-of-0000n files are all read', () => {
  const files = sharded();
  files.delete('model.safetensors.index.json');
  assert.deepEqual(new MemoryCheckpoint(files).names().sort(), ['a', 'b', 'c']);
});

test('bad inputs are one-line UserErrors', () => {
  const s = sharded();
  const without = (n: string): Map<string, Uint8Array> => { const m = new Map(s); m.delete(n); return m; };
  userError(() => new MemoryCheckpoint(without('model-00002-of-00002.safetensors'), 'm'), /m\/model\.safetensors\.index\.json lists shard model-00002-of-00002\.safetensors, which was not given/);
  userError(() => new MemoryCheckpoint(new Map([['config.json', enc('{}')]]), 'm'), /m has no model \.safetensors files/);
  userError(() => new MemoryCheckpoint(new Map([['model.safetensors', s.get('model-00002-of-00002.safetensors')!]]), 'm').config(), /m has no config\.json/);
  userError(() => new MemoryCheckpoint(new Map([...s, ['config.json', enc('[1]')]]), 'm'), /m\/config\.json is not a JSON object/);
  userError(() => new MemoryCheckpoint(new Map([...s, ['config.json', enc('{')]]), 'm'), /m\/config\.json is not valid JSON/);
  userError(() => new MemoryCheckpoint(new Map([...s, ['config.json', new Uint8Array([0xff, 0xfe])]]), 'm'), /m\/config\.json is not valid UTF-8/);
  const wrongShard = JSON.stringify({ weight_map: { a: 'model-00002-of-00002.safetensors', b: 'model-00001-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' } });
  userError(() => new MemoryCheckpoint(new Map([...s, ['model.safetensors.index.json', enc(wrongShard)]]), 'm'), /puts tensor a in model-00002-of-00002\.safetensors, but it is in model-00001-of-00002\.safetensors/);
  const escape = JSON.stringify({ weight_map: { a: '../x.safetensors' } });
  userError(() => new MemoryCheckpoint(new Map([...s, ['model.safetensors.index.json', enc(escape)]]), 'm'), /weight_map entry a must name a shard file in the same folder/);
  const dup = new Map(s);
  dup.delete('model.safetensors.index.json');
  dup.set('model-00002-of-00002.safetensors', s.get('model-00001-of-00002.safetensors')!);
  userError(() => new MemoryCheckpoint(dup, 'm'), /tensor a is in both m\/model-00001-of-00002\.safetensors and m\/model-00002-of-00002\.safetensors/);
});

test('fetchCheckpoint over HTTP: a single file (index 404), index + shards, explicit files, and a 404 error', async () => {
  const folders: Record<string, Map<string, Uint8Array>> = { single: fixtureFiles('qwen3_moe'), sharded: sharded() };
  const hits: string[] = [];
  const server = createServer((req, res) => {
    const [, folder, file] = /^\/([^/]+)\/([^/]+)$/.exec(req.url ?? '') ?? [];
    const body = folder && file ? folders[folder]?.get(file) : undefined;
    hits.push(`${req.url} ${body ? 200 : 404}`);
    res.writeHead(body ? 200 : 404);
    res.end(body ?? 'not found');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  after(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const one = await fetchCheckpoint(`${base}/single`);
  assert.equal(one.dir, `${base}/single/`);
  assert.equal(one.config()['model_type'], 'qwen3_moe');
  assert.ok(one.has('model.embed_tokens.weight'));
  assert.deepEqual(hits.splice(0).sort(), ['/single/config.json 200', '/single/model.safetensors 200', '/single/model.safetensors.index.json 404']);

  const two = await fetchCheckpoint(`${base}/sharded/`);
  assert.deepEqual(two.names().sort(), ['a', 'b', 'c']);
  assert.deepEqual(hits.splice(0).sort(), ['/sharded/config.json 200', '/sharded/model-00001-of-00002.safetensors 200', '/sharded/model-00002-of-00002.safetensors 200', '/sharded/model.safetensors.index.json 200']);

  // Explicit files: an index among them brings in the shards it lists.
  const three = await fetchCheckpoint(`${base}/sharded`, ['model.safetensors.index.json', 'model-00001-of-00002.safetensors']);
  assert.deepEqual(three.names().sort(), ['a', 'b', 'c']);
  assert.deepEqual(hits.splice(0).sort(), ['/sharded/model-00001-of-00002.safetensors 200', '/sharded/model-00002-of-00002.safetensors 200', '/sharded/model.safetensors.index.json 200']);

  await assert.rejects(fetchCheckpoint(`${base}/nowhere`), (e: unknown) => e instanceof UserError && /GET http:\/\/127\.0\.0\.1:\d+\/nowhere\/config\.json: HTTP 404/.test(e.message));
});
