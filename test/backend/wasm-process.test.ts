/**
 * Process-level behaviour, each in a child process: the worker pool never keeps a finished program alive (no
 * shutdown call needed), SWITCHYARD_THREADS sizes it, and 1 disables it. The child's timeout only detects a hang.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

const indexUrl = new URL('../../src/backend/cpu/wasm/index.js', import.meta.url).href;
const storeUrl = new URL('../../src/backend/cpu/weight-store.js', import.meta.url).href;

const child = `
import { initWasmBackend, wasmBackendReady, wasmBackendInfo, wasmLinear } from ${JSON.stringify(indexUrl)};
import { allocWeightData } from ${JSON.stringify(storeUrl)};
if (!initWasmBackend()) throw new Error('no wasm backend');
await wasmBackendReady();
const K = 512, N = 4096;
const w = { name: 'w', dtype: 'bf16', shape: [N, K], data: allocWeightData('bf16', N * K).fill(0x3f80) };
const out = new Float32Array(N);
wasmLinear(new Float32Array(K).fill(1), 1, K, w, N, out);
if (out.some((v) => v !== K)) throw new Error('wrong result');
process.stdout.write(JSON.stringify(wasmBackendInfo()));
// no shutdown: the process must still exit on its own
`;

function run(env: Record<string, string>): { status: number | null; info: { threads: number; workersReady: number; counts: { parallel: number } } } {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', child], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.error, undefined, `child failed to run or hung: ${r.error?.message}`);
  assert.equal(r.status, 0, `child exited with ${r.status}: ${r.stderr}`);
  return { status: r.status, info: JSON.parse(r.stdout) };
}

test('with SWITCHYARD_THREADS=2 the call is split, and the process exits without shutdown', () => {
  const { info } = run({ SWITCHYARD_THREADS: '2' });
  assert.equal(info.threads, 2);
  assert.equal(info.workersReady, 1);
  assert.equal(info.counts.parallel, 1);
});

test('SWITCHYARD_THREADS=1 runs without workers', () => {
  const { info } = run({ SWITCHYARD_THREADS: '1' });
  assert.equal(info.threads, 1);
  assert.equal(info.workersReady, 0);
  assert.equal(info.counts.parallel, 0);
});

test('shutdown right after init (workers still starting) completes', async () => {
  const { initWasmBackend, shutdownWasmBackend, wasmBackendInfo } = await import('../../src/backend/cpu/wasm/index.js');
  assert.ok(initWasmBackend({ threads: 3 }));
  assert.equal(wasmBackendInfo()!.threads, 3);
  await shutdownWasmBackend(); // would hang if a worker that starts after the quit signal kept waiting
  assert.equal(wasmBackendInfo(), undefined);
});
