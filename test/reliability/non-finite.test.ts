/**
 * Non-finite values. A single NaN in a router or attention weight used to make generation emit token 0 forever with
 * exit code 0 (argmax over a NaN row). Now:
 * - a NaN / ±Infinity in any weight is refused at load, naming the file, the tensor and the element (f32, bf16 kept
 *   as bf16, bf16 and f16 widened; CPU and the device graph, which load through the same reader);
 * - finite weights whose logits still overflow (values near the f32 maximum) stop generation with an error naming
 *   the step and position, CPU and WebGPU (lavapipe).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsFile, encodeSafetensors, type TensorToWrite } from '../../src/io/safetensors.js';
import { FileSource } from '../../src/io/file-source.js';
import { MemoryCheckpoint } from '../../src/io/memory-checkpoint.js';
import { loadModel } from '../../src/models/load.js';
import { loadDeviceModel } from '../../src/models/load-device.js';
import { CpuOps } from '../../src/backend/cpu/cpu-ops.js';
import { WebGpuOps } from '../../src/backend/webgpu/webgpu-ops.js';
import { generate, generateAsync, GenerationError, type AsyncStepModel } from '../../src/infer/generate.js';
import type { CausalLM } from '../../src/models/causal-lm.js';
import { UserError } from '../../src/util/errors.js';
import { FIXTURES } from '../helpers/fixtures.js';
import { userError } from '../helpers/user-error.js';

const CLI = join(process.cwd(), 'dist/src/cli/main.js');
const ROUTER = 'model.layers.0.mlp.gate.weight';
const ATTN = 'model.layers.1.self_attn.q_proj.weight';
const EL = 17;

let root: string;
before(() => { root = mkdtempSync(join(tmpdir(), 'sy-nonfinite-')); });
after(() => rmSync(root, { recursive: true, force: true }));

/**
 * A copy of a fixture folder whose model.safetensors is rewritten (same tensors, same order, encodeSafetensors) after
 * `edit` changed the raw bytes of some tensors.
 */
function editedCopy(fixture: string, edit: (name: string, dtype: string, bytes: Uint8Array) => void): string {
  const src = join(FIXTURES, fixture);
  const dir = mkdtempSync(join(root, `${fixture}-`));
  copyFileSync(join(src, 'config.json'), join(dir, 'config.json'));
  const f = new SafetensorsFile(new FileSource(join(src, 'model.safetensors')));
  const tensors: Record<string, TensorToWrite> = {};
  for (const t of [...f.tensors.values()].sort((a, b) => a.offset - b.offset)) {
    const bytes = f.bytes(t.name);
    edit(t.name, t.dtype, bytes);
    tensors[t.name] = { dtype: t.dtype, shape: t.shape, data: bytes };
  }
  writeFileSync(join(dir, 'model.safetensors'), encodeSafetensors(tensors, f.metadata));
  f.close();
  return dir;
}

/** Set element `i` of a tensor's raw bytes to `v` in its own dtype (bf16: the top half of the f32 bits, exact here). */
function setElement(dtype: string, bytes: Uint8Array, i: number, v: number): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === 'F32') dv.setFloat32(i * 4, v, true);
  else if (dtype === 'BF16') {
    const f = new DataView(new ArrayBuffer(4));
    f.setFloat32(0, v, true);
    dv.setUint16(i * 2, f.getUint32(0, true) >>> 16, true);
  } else throw new Error(`setElement: ${dtype}`);
}

const poisoned = (fixture: string, tensor: string, v: number): string =>
  editedCopy(fixture, (name, dtype, bytes) => { if (name === tensor) setElement(dtype, bytes, EL, v); });

describe('a NaN or ±Infinity in a weight is refused at load, naming the file, the tensor and the element', () => {
  const cases: Array<[string, number, string]> = [[' NaN', NaN, 'a NaN'], ['+Inf', Infinity, '\\+Infinity'], ['-Inf', -Infinity, '-Infinity']];
  for (const fixture of ['qwen3_moe', 'qwen3_moe-bf16']) {
    for (const tensor of [ROUTER, ATTN]) {
      for (const [label, v, kind] of cases) {
        test(`${fixture}: ${label} in ${tensor}`, () => {
          const dir = poisoned(fixture, tensor, v);
          const re = new RegExp(`model\\.safetensors: tensor ${tensor.replace(/\./g, '\\.')} has ${kind} at element ${EL}`);
          userError(() => loadModel(dir), re);
          // bf16 kept as bf16 (the default) and widened to f32 are two different read paths
          userError(() => loadModel(dir, { keepBf16: false }), re);
          // the device graph loads through the same reader, before anything is uploaded
          userError(() => loadDeviceModel(dir, new CpuOps()), re);
        });
      }
    }
  }

  test('control: the unmodified copy loads (the rewrite itself does not trip the check)', () => {
    for (const fixture of ['qwen3_moe', 'qwen3_moe-bf16']) loadModel(editedCopy(fixture, () => {})).model.close();
  });

  test('F16 weights (widened on load) and the in-memory checkpoint of the browser bundle', () => {
    const h = Uint16Array.of(0x3c00, 0x3c00, 0x3c00, 0x7e00, 0x7c00); // 1, 1, 1, NaN, +Inf
    const f32 = Float32Array.of(1, 2, -Infinity);
    const files = new Map([['model.safetensors', encodeSafetensors({ h: { dtype: 'F16', shape: [5], data: h }, f: { dtype: 'F32', shape: [3], data: f32 } })]]);
    const ck = new MemoryCheckpoint(files, 'https://x/m');
    userError(() => ck.weight('h'), /^https:\/\/x\/m\/model\.safetensors: tensor h has a NaN at element 3/);
    userError(() => ck.weight('f'), /tensor f has -Infinity at element 2/);
  });

  test('the CLI exits 2 with one line', () => {
    const dir = poisoned('qwen3_moe', ROUTER, NaN);
    const r = spawnSync(process.execPath, [CLI, 'generate', dir, '--prompt-ids', '1,2,3', '--max-new-tokens', '3'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 2, r.stderr);
    const lines = r.stderr.trim().split('\n').filter((l) => !/^loading/.test(l));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, new RegExp(`^switchyard: error: .*model\\.safetensors: tensor ${ROUTER.replace(/\./g, '\\.')} has a NaN at element ${EL}`));
    assert.equal(r.stdout, '');
  });
});

describe('finite weights, non-finite logits: generation stops naming the step', () => {
  // lm_head rows of ±3e38: every logit is a sum of 64 products of that size with O(1) hidden values, far beyond
  // f32's 3.4e38, so the first logits row already holds ±Infinity (or NaN from +Inf + -Inf) while every weight is
  // finite and passes the load check.
  let dir: string;
  before(() => {
    dir = editedCopy('qwen3_moe', (name, dtype, bytes) => {
      if (name !== 'lm_head.weight') return;
      const n = bytes.byteLength / 4;
      for (let i = 0; i < n; i++) setElement(dtype, bytes, i, i % 3 === 0 ? -3e38 : 3e38);
    });
  });

  const STEP0 = /non-finite logits at generation step 0 \(position 2\): token \d+ has logit (NaN|\+Infinity|-Infinity)/;

  test('CPU: generate()', () => {
    const m = loadModel(dir);
    assert.throws(() => generate(m.model, [[1, 2, 3]], { maxNewTokens: 4 }), (e) => e instanceof GenerationError && e instanceof UserError && STEP0.test(e.message));
  });

  test('device graph on the CPU ops: generateAsync()', async () => {
    const m = loadDeviceModel(dir, new CpuOps());
    await assert.rejects(generateAsync(m.model, [[1, 2, 3]], { maxNewTokens: 4 }), STEP0);
  });

  test('the CLI exits 2 with one line', () => {
    const r = spawnSync(process.execPath, [CLI, 'generate', dir, '--prompt-ids', '1,2,3', '--max-new-tokens', '3'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 2, r.stderr);
    const lines = r.stderr.trim().split('\n').filter((l) => !/^loading/.test(l));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^switchyard: error: non-finite logits at generation step 0 \(position 2\)/);
  });

  test('WebGPU (lavapipe here): generateAsync() and the load check', async () => {
    const ops = await WebGpuOps.create();
    try {
      const m = loadDeviceModel(dir, ops);
      await assert.rejects(generateAsync(m.model, [[1, 2, 3]], { maxNewTokens: 2 }), STEP0);
      userError(() => loadDeviceModel(poisoned('qwen3_moe-bf16', ATTN, NaN), ops), new RegExp(`tensor ${ATTN.replace(/\./g, '\\.')} has a NaN at element ${EL}`));
    } finally {
      ops.ctx.destroy();
    }
  });
});

test('a later step: the error names that step and its position, for each sequence of a batch', async () => {
  // A stand-in model (V = 4) whose 4th forward (step 3) returns a NaN in sequence 1's row: this checks the loop's
  // step/position bookkeeping, which a real model cannot be steered to hit at an exact step.
  const V = 4;
  let calls = 0;
  const model = {
    spec: { vocabSize: V, maxPositions: 100 },
    newCache: () => ({}),
    forward: (ids: ArrayLike<number>, B: number) => {
      const S = ids.length / B;
      const logits = new Float32Array(B * S * V).fill(0.5);
      if (calls === 3) logits[(1 * S + S - 1) * V + 2] = NaN;
      calls++;
      return { logits };
    },
  };
  const re = /non-finite logits at generation step 3 \(position 4, sequence 1\): token 2 has logit NaN/;
  // Only spec, newCache and forward are used by generate(); the rest of CausalLM is irrelevant here.
  assert.throws(() => generate(model as unknown as CausalLM, [[1, 2], [3, 0]], { maxNewTokens: 10 }), re);
  calls = 0;
  const asyncModel: AsyncStepModel<object> = { ...model, forward: async (ids, B) => model.forward(ids, B) };
  await assert.rejects(generateAsync(asyncModel, [[1, 2], [3, 0]], { maxNewTokens: 10 }), re);
  // control: without the NaN the same loop runs to the end
  calls = -1000;
  assert.equal(generate(model as unknown as CausalLM, [[1, 2], [3, 0]], { maxNewTokens: 10 })[0]!.length, 12);
});
