/** The embedded kernels module: built from the current sources, shaped as the runtime expects. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { KERNELS_INPUT_SHA256 } from '../../src/backend/cpu/wasm/kernels.generated.js';
import { kernelBytes, wasmUnsupportedReason } from '../../src/backend/cpu/wasm/module.js';

// dist/test/backend → repository root.
const root = fileURLToPath(new URL('../../../', import.meta.url));

test('embedded module matches assembly/*.ts and the build script (rebuild with `npm run build:wasm`)', async () => {
  const script = `${root}scripts/build-wasm.mjs`;
  assert.ok(existsSync(`${root}assembly`) && existsSync(script), 'kernel sources missing from the checkout');
  const { inputHash } = (await import(pathToFileURL(script).href)) as { inputHash(dir?: string): string };
  assert.equal(KERNELS_INPUT_SHA256, inputHash(root), 'src/backend/cpu/wasm/kernels.generated.ts is stale');
});

test('module imports only the shared memory and exports the kernels', () => {
  assert.equal(wasmUnsupportedReason(), undefined);
  const m = new WebAssembly.Module(kernelBytes());
  assert.deepEqual(WebAssembly.Module.imports(m).map((i) => `${i.module}.${i.name}:${i.kind}`), ['env.memory:memory']);
  assert.deepEqual(WebAssembly.Module.exports(m).map((e) => e.name).sort(), ['linear_bf16', 'linear_f32', 'permute_x']);
});
