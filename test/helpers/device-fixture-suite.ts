/**
 * The fixture checks for the device graph (src/models/device-causal-lm.ts) on any backend: logits of the full
 * forward against the float64 reference, each MoE layer's top-k expert sets from the same forward against the
 * reference router outputs, and greedy KV-cached generation against generated_ids.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Fixture, assertSameTopK, fixtureNames, maxAbsDiff } from './fixtures.js';
import { loadDeviceModel, type LoadedDeviceModel } from '../../src/models/load-device.js';
import type { DeviceForwardResult } from '../../src/models/device-causal-lm.js';
import type { DeviceOps } from '../../src/backend/device-ops.js';
import { generateAsync } from '../../src/infer/generate.js';

export interface DeviceSuiteOptions<H, W, X> {
  label: string;
  /** Logit tolerance (absolute), with the reason stated by the caller. */
  logitTol: number;
  ops: () => Promise<DeviceOps<H, W, X>>;
  done?: () => void;
  fixtures?: string[];
}

export function deviceFixtureSuite<H, W, X>(o: DeviceSuiteOptions<H, W, X>): void {
  let ops: DeviceOps<H, W, X>;
  before(async () => { ops = await o.ops(); });
  after(() => o.done?.());
  for (const name of o.fixtures ?? fixtureNames()) {
    describe(`fixture ${name} [${o.label}]`, () => {
      let fx: Fixture;
      let m: LoadedDeviceModel<H, W, X>;
      let fwd: DeviceForwardResult;
      let ids: number[];

      before(async () => {
        fx = new Fixture(name);
        m = loadDeviceModel(fx.dir, ops);
        ids = fx.ints('input_ids');
        fwd = await m.model.forward(ids, fx.meta.batch, undefined, { captureExperts: true });
      });

      it(`logits within ${o.logitTol} of the reference`, () => {
        const want = fx.f32('logits');
        const { max, at } = maxAbsDiff(fwd.logits, want);
        assert.ok(max <= o.logitTol, `logits: max |diff| ${max.toExponential(3)} at ${at} (got ${fwd.logits[at]}, want ${want[at]})`);
      });

      it('every MoE layer picks the reference top-k expert sets', () => {
        let checked = 0;
        m.spec.layers.forEach((ls, l) => {
          if (ls.ffn.kind !== 'moe' || !fx.has(`router_in.${l}`)) return;
          assertSameTopK(fx, l, ls.ffn.topK, fwd.experts![l]!);
          checked++;
        });
        assert.ok(checked > 0, 'no MoE layer with router references');
      });

      it('greedy generation with the device KV cache equals generated_ids', async () => {
        const B = fx.meta.batch;
        const S = fx.meta.seq;
        const P = fx.meta.gen_prompt;
        const prompts = Array.from({ length: B }, (_, b) => ids.slice(b * S, b * S + P));
        const out = await generateAsync(m.model, prompts, { maxNewTokens: fx.meta.gen_new });
        const ref = fx.ints('generated_ids');
        const W = P + fx.meta.gen_new;
        for (let b = 0; b < B; b++) assert.deepEqual(out[b], ref.slice(b * W, (b + 1) * W), `sequence ${b}`);
      });
    });
  }
}
