/**
 * The tensors of a safetensors file must cover its data section exactly (no gap, no trailing bytes), as the reference
 * implementation (huggingface/safetensors `Metadata::validate` + the buffer-length check) requires. Without this a
 * header length off by one reads every tensor one byte off and generation produces garbage with exit code 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsFile, encodeSafetensors } from '../../src/io/safetensors.js';
import { BufferSource } from '../../src/io/byte-source.js';
import { FileSource } from '../../src/io/file-source.js';
import { writeSafetensorsStreaming } from '../../src/io/safetensors-writer.js';
import { SafetensorsError } from '../../src/util/errors.js';
import { loadModel } from '../../src/models/load.js';
import { FIXTURES } from '../helpers/fixtures.js';
import { userError } from '../helpers/user-error.js';

const CLI = join(process.cwd(), 'dist/src/cli/main.js');

/** u64 length + header text + data bytes, exactly as given (no padding, no checks). */
function raw(header: string, data: number | Uint8Array, len?: number): Uint8Array {
  const h = new TextEncoder().encode(header);
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(len ?? h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

const T = (dtype: string, shape: number[], b: number, e: number) => ({ dtype, shape, data_offsets: [b, e] });
const open = (bytes: Uint8Array) => new SafetensorsFile(new BufferSource(bytes, 'x.safetensors'));

function rejects(bytes: Uint8Array, re: RegExp): void {
  const e = userError(() => open(bytes), re);
  assert.ok(e instanceof SafetensorsError);
  assert.ok(e.message.startsWith('x.safetensors: '), `names the file: ${e.message}`);
}

test('a gap between two tensors is rejected, naming both tensors and the byte range', () => {
  const h = JSON.stringify({ a: T('U8', [4], 0, 4), b: T('U8', [4], 6, 10) });
  rejects(raw(h, 10), /gap: bytes \[4, 6\) .* between a and b/);
});

test('a gap before the first tensor is rejected', () => {
  rejects(raw(JSON.stringify({ a: T('F32', [1], 4, 8) }), 8), /gap: bytes \[0, 4\) .* before a/);
});

test('trailing bytes after the last tensor are rejected, with their position', () => {
  rejects(raw(JSON.stringify({ a: T('F32', [2], 0, 8) }), 9), /1 trailing bytes after the last tensor: the tensors end at byte 8 of the 9-byte data section/);
  // a file with no tensors must have an empty data section
  rejects(raw('{}', 3), /3 trailing bytes/);
  // exact coverage still opens (control: the rule is not "reject everything")
  assert.equal(open(raw(JSON.stringify({ a: T('F32', [2], 0, 8) }), 8)).tensors.size, 1);
  assert.equal(open(raw('{}', 0)).tensors.size, 0);
});

test('an empty tensor in the middle of another one is rejected; on a boundary it is fine', () => {
  rejects(raw(JSON.stringify({ a: T('U8', [8], 0, 8), e: T('U8', [0], 3, 3) }), 8), /overlap/);
  assert.equal(open(raw(JSON.stringify({ a: T('U8', [8], 0, 8), e: T('U8', [0], 8, 8) }), 8)).tensors.size, 2);
});

test('a header length one byte short (the data section shifted by one) is rejected', () => {
  const good = encodeSafetensors({ w: { dtype: 'F32', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) } });
  const n = Number(new DataView(good.buffer).getBigUint64(0, true));
  // The writer pads the header with spaces, so N − 1 still parses as JSON: only the coverage rule can catch it.
  assert.equal(good[8 + n - 1], 0x20, 'precondition: the header ends with padding');
  const bad = good.slice();
  new DataView(bad.buffer).setBigUint64(0, BigInt(n - 1), true);
  rejects(bad, /1 trailing bytes/);
});

test('every writer in src/io writes files that cover their data section exactly', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-cover-'));
  try {
    const tensors = {
      a: { dtype: 'F32', shape: [3], data: Float32Array.of(1, 2, 3) },
      e: { dtype: 'BF16', shape: [0, 2], data: new Uint16Array(0) },
      b: { dtype: 'U8', shape: [5], data: Uint8Array.of(1, 2, 3, 4, 5) },
      c: { dtype: 'I64', shape: [1], data: BigInt64Array.of(7n) },
    };
    const f1 = open(encodeSafetensors(tensors, { format: 'pt' }));
    assert.deepEqual([...f1.bytes('b')], [1, 2, 3, 4, 5]);
    const p = join(dir, 'streamed.safetensors');
    writeSafetensorsStreaming(p, Object.entries(tensors).map(([name, t]) => ({
      name, dtype: t.dtype, shape: t.shape,
      fill: (dst: Uint8Array, start: number) => {
        const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
        const bpe = t.data.BYTES_PER_ELEMENT;
        dst.set(bytes.subarray(start * bpe, start * bpe + dst.length));
      },
    })));
    const f2 = new SafetensorsFile(new FileSource(p));
    assert.deepEqual([...f2.bytes('b')], [1, 2, 3, 4, 5]);
    f2.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a real checkpoint with a header length off by one: loadModel and the CLI refuse it (exit 2, one line)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-cover-'));
  try {
    const src = join(FIXTURES, 'qwen3_moe');
    for (const f of ['config.json', 'generation_config.json']) copyFileSync(join(src, f), join(dir, f));
    const bytes = new Uint8Array(readFileSync(join(src, 'model.safetensors')));
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    let k = 0;
    while (bytes[8 + n - 1 - k] === 0x20) k++;
    // Shorten the header length by one byte of padding when there is some, else lengthen it by one (the header then
    // swallows the first data byte and no longer parses: also rejected, by a different rule).
    const m = k > 0 ? n - 1 : n + 1;
    new DataView(bytes.buffer, bytes.byteOffset).setBigUint64(0, BigInt(m), true);
    writeFileSync(join(dir, 'model.safetensors'), bytes);
    userError(() => loadModel(dir), k > 0 ? /model\.safetensors: 1 trailing bytes/ : /model\.safetensors: header is not valid/);
    const r = spawnSync(process.execPath, [CLI, 'generate', dir, '--prompt-ids', '1,2,3', '--max-new-tokens', '2'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 2, `exit code (stderr: ${r.stderr})`);
    const lines = r.stderr.trim().split('\n').filter((l) => !/^loading/.test(l));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^switchyard: error: .*model\.safetensors: /);
    assert.equal(r.stdout, '', 'no tokens printed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
