/** Dev tool: max |diff| of logits, hidden states and block outputs for one fixture. Usage: node dist/test/tools/compare-fixture.js <fixture-name> */
import { Fixture, maxAbsDiff } from '../helpers/fixtures.js';
import { loadModel } from '../../src/models/load.js';
const name = process.argv[2]!;
const fx = new Fixture(name);
const { model } = loadModel(fx.dir);
const ids = fx.ints('input_ids');
const r = model.forward(ids, fx.meta.batch, undefined, true);
console.log(name, 'logits', maxAbsDiff(r.logits, fx.f32('logits')));
r.capture!.hidden.forEach((h, i) => console.log(' hidden', i, maxAbsDiff(h, fx.f32(`hidden_states.${i}`)).max));
r.capture!.ffnOut.forEach((h, i) => fx.has(`moe_out.${i}`) && console.log(' moe_out', i, maxAbsDiff(h, fx.f32(`moe_out.${i}`)).max));
