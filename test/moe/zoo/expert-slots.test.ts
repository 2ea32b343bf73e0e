/** runExpertSlots (variable slots per token) agrees with runExperts on fixed top-k and skips extra ids. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dispatch } from '../../../src/moe/dispatch.js';
import { dispatchSlots, runExpertSlots, runExperts, type ExpertWeights } from '../../../src/moe/experts.js';
import type { Weight } from '../../../src/tensor/weight.js';
import type { Routing } from '../../../src/moe/routers/router.js';
import { rng } from './helpers.js';

const r = rng(21);
const rand = (n: number, s: number): Float32Array => Float32Array.from({ length: n }, () => (r() * 2 - 1) * s);
const w = (shape: [number, number]): Weight => ({ name: 'w', dtype: 'f32', shape, data: rand(shape[0] * shape[1], 1 / Math.sqrt(shape[1])) });

describe('runExpertSlots', () => {
  const T = 11, D = 8, F = 6, E = 5, k = 2;
  const experts: ExpertWeights[] = Array.from({ length: E }, () => ({ gate: w([F, D]), up: w([F, D]), down: w([D, F]) }));
  const x = rand(T * D, 1);
  it('equals runExperts for the same fixed top-k routing (bit for bit: same groups, same order)', () => {
    const ex = new Int32Array(T * k);
    for (let t = 0; t < T; t++) { ex[t * k] = t % E; ex[t * k + 1] = (t * 3 + 1) % E === t % E ? (t + 1) % E : (t * 3 + 1) % E; }
    const routing: Routing = { T, k, E, logits: new Float32Array(T * E), scores: new Float32Array(T * E), experts: ex, gates: rand(T * k, 1) };
    const a = new Float32Array(T * D);
    runExperts(x, D, routing, dispatch(routing), (e) => experts[e]!, { act: 'silu' }, a);
    const b = new Float32Array(T * D);
    runExpertSlots(x, D, { tokens: Int32Array.from({ length: T * k }, (_, s) => Math.floor(s / k)), experts: ex, gates: routing.gates }, E, (e) => experts[e]!, { act: 'silu' }, b);
    assert.deepEqual(b, a);
  });
  it('groups only FFN ids (< E), stable in slot order; extra ids and empty tokens contribute nothing', () => {
    const d = dispatchSlots(Int32Array.of(2, 7, 0, 2, 5, 0), 5);
    assert.deepEqual(Array.from(d.counts), [2, 0, 2, 0, 0]);
    assert.deepEqual(Array.from(d.order), [2, 5, 0, 3]);
    const out = new Float32Array(T * D);
    runExpertSlots(x, D, { tokens: Int32Array.of(3, 3), experts: Int32Array.of(E, E + 1), gates: [1, 1] }, E, (e) => experts[e]!, { act: 'silu' }, out);
    assert.ok(out.every((v) => v === 0));
  });
});
