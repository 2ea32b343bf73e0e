/** Recording routing traces from CausalLM captures: windows, fixed-k routers and slot (zoo) routers. */
import { it, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { loadModel } from '../../src/models/load.js';
import { defaultModelDir } from '../../src/models/default-model.js';
import { traceTokens, validateTrace, tokenSlots } from '../../src/analyze/routing-trace.js';
import { writeTinySwitchyard } from '../moe/zoo/checkpoint.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

it('default model: windows of the context, k slots per token, same routing as a captured forward', () => {
  const { model, spec } = loadModel(defaultModelDir());
  const ids = Array.from({ length: 40 }, (_, i) => (i * 37 + 11) % spec.vocabSize);
  const done: number[] = [];
  const tr = traceTokens(model, ids, { window: 16, onProgress: (d) => done.push(d) });
  validateTrace(tr);
  assert.deepEqual(done, [16, 32, 40]);
  assert.equal(tr.window, 16);
  assert.deepEqual(tr.tokens, ids);
  assert.equal(tr.layers.length, spec.layers.length);
  const l0 = tr.layers[0]!;
  assert.equal(l0.offsets.length, 41);
  assert.equal(l0.experts.length, 40 * 2);
  // The second window is run as its own sequence: tokens 16..31 from position 0.
  const cap = model.forward(ids.slice(16, 32), 1, model.newCache(1), true).capture!;
  const r = cap.routing[1]!;
  for (let t = 0; t < 16; t++) {
    const s = tokenSlots(tr.layers[1]!, 16 + t);
    assert.deepEqual(s.experts, [...r.experts.subarray(t * r.k, t * r.k + r.k)]);
    assert.deepEqual(s.gates, [...r.gates.subarray(t * r.k, t * r.k + r.k)]);
  }
});

it('zoo-routed model: slots (with zero-computation experts) reach the capture and the trace', () => {
  const ck = writeTinySwitchyard({
    router: { kind: 'moe-plus-plus', zero: 1, copy: 1, constant: 1, gatingResidual: true, normTopK: true },
    layers: 3, denseLayers: [1], D: 16, E: 8, F: 12, k: 2, seed: 3,
  });
  dirs.push(ck.dir);
  const { model } = loadModel(ck.dir);
  const ids = Array.from({ length: 12 }, (_, i) => (i * 7 + 3) % 40);
  const cap = model.forward(ids, 1, model.newCache(1), true).capture!;
  assert.equal(cap.slots.length, 3);
  assert.ok(cap.slots[0] && cap.slots[2] && !cap.slots[1] && !cap.routing[0]);
  const tr = traceTokens(model, ids);
  validateTrace(tr);
  assert.deepEqual(tr.layers.map((l) => l.layer), [0, 2], 'the dense layer has no trace');
  assert.equal(tr.layers[0]!.numExperts, 8);
  assert.equal(tr.layers[0]!.numIds, 11);
  const s = cap.slots[0]!;
  assert.equal(tr.layers[0]!.experts.length, s.experts.length);
  for (let t = 0; t < 12; t++) {
    const want = [...s.experts].filter((_, i) => s.tokens[i] === t);
    assert.deepEqual(tokenSlots(tr.layers[0]!, t).experts, want);
  }
});
