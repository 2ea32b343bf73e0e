/** Scratch: DeepSeek fixtures — router outputs vs router_outN.l, greedy generation with the KV cache. */
import { Fixture, maxAbsDiff } from '../helpers/fixtures.js';
import { loadModel } from '../../src/models/load.js';
import { MoeBlock } from '../../src/moe/moe-block.js';

const name = process.argv[2]!;
const fx = new Fixture(name);
const { model, spec } = loadModel(fx.dir);
const D = spec.hiddenSize;
model.layers.forEach((layer, l) => {
  if (!(layer.ffn instanceof MoeBlock) || !fx.has(`router_in.${l}`)) return;
  const x = fx.f32(`router_in.${l}`);
  const T = x.length / D;
  const logits = layer.ffn.routerLogits(x, T);
  const r = layer.ffn.router.route(logits, T);
  for (let j = 0; j < 3; j++) {
    const key = `router_out${j}.${l}`;
    if (!fx.has(key)) continue;
    console.log(` layer ${l} ${key} ${fx.io.info(key).dtype} [${fx.shape(key).join(', ')}]`);
  }
  const out0 = fx.f32(`router_out0.${l}`);
  console.log('  out0 vs logits', maxAbsDiff(logits, out0).max, ' vs scores', maxAbsDiff(r.scores, out0).max);
  const w = fx.f32(`router_out1.${l}`);
  const idx = fx.ints(`router_out2.${l}`);
  const k = r.k;
  let setsOk = true;
  let gateErr = 0;
  for (let t = 0; t < T; t++) {
    const mine = new Map<number, number>();
    for (let j = 0; j < k; j++) mine.set(r.experts[t * k + j]!, r.gates[t * k + j]!);
    for (let j = 0; j < k; j++) {
      const e = idx[t * k + j]!;
      const g = mine.get(e);
      if (g === undefined) { setsOk = false; continue; }
      gateErr = Math.max(gateErr, Math.abs(g - w[t * k + j]!));
    }
  }
  console.log(`  expert sets identical: ${setsOk}; max |gate diff| ${gateErr}`);
});

// Greedy generation: prefill the prompt, then one token at a time through the cache.
const B = fx.meta.batch, S = fx.meta.seq, P = fx.meta.gen_prompt, N = fx.meta.gen_new;
const ids = fx.ints('input_ids');
const ref = fx.ints('generated_ids');
const V = spec.vocabSize;
const cache = model.newCache(B);
const seqs = Array.from({ length: B }, (_, b) => ids.slice(b * S, b * S + P));
let step = seqs.flat();
let stepLen = P;
for (let n = 0; n < N; n++) {
  const { logits } = model.forward(step, B, cache);
  const next: number[] = [];
  for (let b = 0; b < B; b++) {
    const base = (b * stepLen + stepLen - 1) * V;
    let best = 0;
    for (let v = 1; v < V; v++) if (logits[base + v]! > logits[base + best]!) best = v;
    next.push(best);
    seqs[b]!.push(best);
  }
  step = next;
  stepLen = 1;
}
const W = P + N;
seqs.forEach((s, b) => console.log(` gen ${b}: ${s.join(' ')}\n  ref ${b}: ${ref.slice(b * W, (b + 1) * W).join(' ')}  ${JSON.stringify(s) === JSON.stringify(ref.slice(b * W, (b + 1) * W)) ? 'MATCH' : 'DIFF'}`));

// Cached full forward vs uncached: logits of the whole sequence fed in two chunks.
const full = model.forward(ids, B).logits;
const c2 = model.newCache(B);
const half = 5;
const a = model.forward(ids.filter((_, i) => i % S < half), B, c2).logits;
const rest = model.forward(ids.filter((_, i) => i % S >= half), B, c2).logits;
let err = 0;
for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) for (let v = 0; v < V; v++) {
  const got = s < half ? a[(b * half + s) * V + v]! : rest[(b * (S - half) + s - half) * V + v]!;
  err = Math.max(err, Math.abs(got - full[(b * S + s) * V + v]!));
}
console.log(' chunked-with-cache vs one-shot logits max diff', err, ' vs reference', maxAbsDiff(full, fx.f32('logits')).max);
