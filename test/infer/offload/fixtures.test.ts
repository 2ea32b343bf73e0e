/**
 * Offloaded inference is bit-identical to the fully resident model: same logits bits on a prefill + decode steps and
 * the same generated tokens, for per-expert and fused layouts, budgets of one expert / 25 % / 100 % of the expert
 * bytes, and every policy. Also: the cache never holds more than its budget, and reads only experts' byte ranges.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Fixture } from '../../helpers/fixtures.js';
import { loadModel } from '../../../src/models/load.js';
import { generate } from '../../../src/infer/generate.js';
import { POLICY_NAMES } from '../../../src/infer/offload/policy.js';
import { belady } from '../../../src/infer/offload/belady.js';
import { initCpuBackend } from '../../../src/backend/cpu/init.js';
import { linearKernelName, setLinearKernel } from '../../../src/backend/cpu/linear.js';

const FIXTURES = ['mixtral', 'mixtral-fused', 'qwen3_moe', 'qwen3_moe-fused', 'qwen3_moe-bf16', 'olmoe', 'gpt_oss', 'deepseek_v2', 'deepseek_v3', 'qwen2_moe', 'phimoe', 'granitemoe'];
const NEW = 6;

function bitsEqual(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) assert.fail(`${what}: element ${i} differs (${a[i]} vs ${b[i]})`);
}

/** Prefill logits, then logits of NEW greedy steps, and the tokens. */
function run(model: ReturnType<typeof loadModel>['model'], prompt: number[]): { logits: Float32Array[]; tokens: number[] } {
  const cache = model.newCache(1);
  const logits: Float32Array[] = [];
  let l = model.forward(prompt, 1, cache).logits;
  logits.push(l);
  const V = model.spec.vocabSize;
  const tokens: number[] = [];
  for (let s = 0; s < NEW; s++) {
    const last = l.subarray(l.length - V);
    let best = 0;
    for (let v = 1; v < V; v++) if (last[v]! > last[best]!) best = v;
    tokens.push(best);
    l = model.forward([best], 1, cache).logits;
    logits.push(l);
  }
  return { logits, tokens };
}

for (const backend of ['ts', 'wasm'] as const) {
  describe(`expert offloading is bit-identical to the resident model (${backend} kernels)`, () => {
    before(() => {
      if (backend === 'wasm') initCpuBackend({ threads: 1 });
      else setLinearKernel(undefined);
      assert.equal(linearKernelName(), backend === 'wasm' ? 'wasm-simd' : 'ts');
    });
    for (const name of FIXTURES) {
      it(name, () => {
        const fx = new Fixture(name);
        const prompt = fx.ints('input_ids').slice(0, 5);
        const ref = run(loadModel(fx.dir).model, prompt);
        const refGen = generate(loadModel(fx.dir).model, [prompt], { maxNewTokens: NEW, seed: 3, temperature: 0.8 })[0]!;
        // Probe the expert sizes with a one-off cache.
        const probe = loadModel(fx.dir, { offload: { budgetBytes: 2 ** 40 } }).model;
        const total = probe.offload!.totalExpertBytes();
        const one = probe.offload!.maxExpertBytes();
        probe.close();
        const budgets = { 'one expert': one, '25 %': Math.max(one, Math.floor(total / 4)), '100 %': total };
        for (const [bname, budgetBytes] of Object.entries(budgets)) {
          for (const policy of POLICY_NAMES) {
            const what = `${name} ${policy} budget ${bname}`;
            const { model } = loadModel(fx.dir, { offload: { budgetBytes, policy } });
            const got = run(model, prompt);
            assert.deepEqual(got.tokens, ref.tokens, `${what}: tokens`);
            got.logits.forEach((l, i) => bitsEqual(l, ref.logits[i]!, `${what}: logits of step ${i}`));
            const c = model.offload!;
            assert.ok(c.stats.peakBytes <= budgetBytes, `${what}: peak ${c.stats.peakBytes} > budget ${budgetBytes}`);
            assert.equal(c.stats.hits + c.stats.misses, c.stats.accesses);
            assert.ok(c.stats.loads > 0, `${what}: nothing was offloaded`);
            assert.equal(c.stats.bytesRead, c.stats.loads * one, `${what}: bytes read`);
            if (policy === 'none') assert.equal(c.stats.hits, 0);
            if (policy !== 'prefetch') {
              // A demand-only cache cannot beat Belady on its own trace.
              const slots = Math.floor(budgetBytes / one);
              assert.ok(belady(c.trace, slots).hits >= c.stats.hits, `${what}: beat Belady`);
            }
            if (bname === '100 %' && policy !== 'none') assert.ok(c.stats.loads <= total / one, `${what}: reloaded with everything fitting`);
            model.close();
            const gen = loadModel(fx.dir, { offload: { budgetBytes, policy } }).model;
            assert.deepEqual(generate(gen, [prompt], { maxNewTokens: NEW, seed: 3, temperature: 0.8 })[0], refGen, `${what}: sampled generation`);
            gen.close();
          }
        }
      });
    }
  });
}

describe('expert cache', () => {
  it('refuses a budget smaller than one expert', () => {
    const fx = new Fixture('qwen3_moe');
    assert.throws(() => loadModel(fx.dir, { offload: { budgetBytes: 16 } }), /smaller than one expert/);
  });
  it('prefetch loads predicted experts and turns some misses into hits', () => {
    const fx = new Fixture('qwen3_moe');
    const prompt = fx.ints('input_ids').slice(0, 5);
    const hitRate = (policy: 'lru' | 'prefetch'): { rate: number; prefetchLoads: number; prefetchHits: number } => {
      const m0 = loadModel(fx.dir, { offload: { budgetBytes: 2 ** 40, policy } }).model;
      const one = m0.offload!.maxExpertBytes();
      const total = m0.offload!.totalExpertBytes();
      m0.close();
      const { model } = loadModel(fx.dir, { offload: { budgetBytes: Math.floor(total / 4 / one) * one, policy } });
      run(model, prompt);
      const s = model.offload!.stats;
      model.close();
      return { rate: s.hits / s.accesses, prefetchLoads: s.prefetchLoads, prefetchHits: s.prefetchHits };
    };
    const lru = hitRate('lru');
    const pf = hitRate('prefetch');
    assert.equal(lru.prefetchLoads, 0);
    assert.ok(pf.prefetchLoads > 0);
    assert.ok(pf.prefetchHits > 0);
    assert.ok(pf.rate > lru.rate, `prefetch ${pf.rate} vs lru ${lru.rate}`);
  });
});

describe('overlapped prefetch (WASM heap, reader thread)', () => {
  before(() => {
    initCpuBackend({ threads: 1 });
    assert.equal(linearKernelName(), 'wasm-simd');
  });
  for (const name of ['qwen3_moe', 'mixtral-fused', 'qwen3_moe-bf16']) {
    it(`${name}: prefetched experts are read by the reader thread, and logits stay bit-identical`, () => {
      const fx = new Fixture(name);
      const prompt = fx.ints('input_ids').slice(0, 5);
      const ref = run(loadModel(fx.dir).model, prompt);
      const probe = loadModel(fx.dir, { offload: { budgetBytes: 2 ** 40 } }).model;
      const one = probe.offload!.maxExpertBytes();
      const total = probe.offload!.totalExpertBytes();
      probe.close();
      const budgetBytes = Math.max(one, Math.floor(total / 4 / one) * one);
      const stats = (asyncPrefetch: boolean) => {
        const { model } = loadModel(fx.dir, { offload: { budgetBytes, policy: 'prefetch', asyncPrefetch } });
        const got = run(model, prompt);
        assert.deepEqual(got.tokens, ref.tokens, `${name} async=${asyncPrefetch}: tokens`);
        got.logits.forEach((l, i) => bitsEqual(l, ref.logits[i]!, `${name} async=${asyncPrefetch}: logits of step ${i}`));
        const s = { ...model.offload!.stats };
        assert.ok(s.peakBytes <= budgetBytes);
        model.close();
        return s;
      };
      const on = stats(true);
      const off = stats(false);
      assert.ok(on.prefetchLoads > 0, 'nothing was prefetched');
      assert.equal(on.asyncLoads, on.prefetchLoads, 'every prefetch went to the reader thread');
      assert.equal(off.asyncLoads, 0);
      // Overlap changes when bytes arrive, never what the cache holds.
      for (const k of ['accesses', 'hits', 'misses', 'prefetchHits', 'prefetchLoads', 'loads', 'bytesRead', 'evictions'] as const) {
        assert.equal(on[k], off[k], `${name}: ${k}`);
      }
    });
  }
});
