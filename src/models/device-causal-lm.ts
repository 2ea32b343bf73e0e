/**
 * The causal MoE LM graph over a device backend (src/backend/device-ops.ts): the same ModelSpec, weight names,
 * routers and RoPE tables as the CPU CausalLM, with every op recorded on the device and weights resident there from
 * load on. A forward reads back only the logits (and, when asked, each MoE layer's chosen experts for analytics).
 *
 * Per layer: x = norm(h); attention per sequence over the device KV cache; h += rm·a; y = norm(h);
 * dense FFN or MoE (router linear → fused route/top-k → grouped experts in one go → combine) + shared experts;
 * h += rm·ffn. The zoo (trainable research) routers and expert offloading are CPU-only: a clear error says so.
 */
import type { WeightSource } from '../io/weight-source.js';
import type { ModelSpec, LayerSpec, NormSpec, GqaAttentionSpec, MlaAttentionSpec, MoeSpec, DenseFfnSpec } from './spec.js';
import type { Weight } from '../tensor/weight.js';
import {
  isDeviceRouterSpec, type ActivationSpec, type DeviceKVCache, type DeviceLayerCache, type DeviceOps, type DeviceRouterSpec,
} from '../backend/device-ops.js';
import { loadGqaWeights, loadMlaWeights } from '../nn/attention-weights.js';
import { loadGatedFfn } from '../nn/dense-ffn.js';
import { loadExperts } from '../moe/expert-loader.js';
import { makeRouter } from '../moe/routers/index.js';
import { SigmoidGroupTopKRouter } from '../moe/routers/sigmoid-group-topk.js';
import { ropeTable, ropeCosSin, type RopeTable } from '../nn/rope.js';
import { UserError } from '../util/errors.js';
import { withPlainWeights } from '../backend/cpu/weight-store.js';

/** Why a spec cannot run on a device backend, or undefined when it can. */
export function deviceUnsupportedReason(spec: ModelSpec): string | undefined {
  for (const [i, l] of spec.layers.entries()) {
    if (l.ffn.kind === 'moe' && !isDeviceRouterSpec(l.ffn.router)) {
      return `layer ${i} uses the research router '${l.ffn.router.kind}', which runs on the CPU only`;
    }
  }
  return undefined;
}

interface DNorm<W> { spec: NormSpec; w: W; b?: W }

interface DGqa<W> {
  kind: 'gqa'; spec: GqaAttentionSpec; rope: RopeTable;
  q: W; k: W; v: W; o: W; qb?: W; kb?: W; vb?: W; ob?: W; qNorm?: W; kNorm?: W; sinks?: W;
}

interface DMla<W> {
  kind: 'mla'; spec: MlaAttentionSpec; rope: RopeTable;
  q?: W; qa?: W; qaBias?: W; qaNorm?: W; qb?: W; kva: W; kvaBias?: W; kvaNorm: W; kvb: W; o: W; oBias?: W;
}

interface DFfn<W> { gate: W; up: W; down: W; F: number; act: ActivationSpec }

interface DMoe<W, X> {
  kind: 'moe'; spec: MoeSpec; router: DeviceRouterSpec; routerW: W; routerB?: W; bias?: W; experts: X;
  act: ActivationSpec; shared?: DFfn<W>; sharedGate?: W;
}

interface DLayer<W, X> {
  inputNorm: DNorm<W>;
  attn: DGqa<W> | DMla<W>;
  postNorm: DNorm<W>;
  ffn: ({ kind: 'dense' } & DFfn<W>) | DMoe<W, X>;
}

export interface DeviceLoadOptions {
  onProgress?: (done: number, total: number) => void;
}

export interface DeviceForwardOptions {
  /** Read back each MoE layer's chosen experts [T, k] (undefined for dense layers). */
  captureExperts?: boolean;
  /** Compute and read back only each sequence's last-position logits ([B, 1, V]) — what sampling needs. */
  lastOnly?: boolean;
}

export interface DeviceForwardResult {
  /** [B, S, V] */
  logits: Float32Array;
  experts?: (Int32Array | undefined)[];
}

export class DeviceCausalLM<H, W, X> {
  private readonly layers: DLayer<W, X>[] = [];
  private embed!: W;
  private lmHead!: W;
  private lmHeadBias?: W;
  private finalNorm!: DNorm<W>;

  constructor(readonly ops: DeviceOps<H, W, X>, readonly spec: ModelSpec, ck: WeightSource, opts: DeviceLoadOptions = {}) {
    const why = deviceUnsupportedReason(spec);
    if (why) throw new UserError(`${ops.name}: ${why}`);
    const load = (): void => this.load(ck, opts);
    if (ops.uploadsWeights) withPlainWeights(load);
    else load();
  }

  private load(ck: WeightSource, opts: DeviceLoadOptions): void {
    const spec = this.spec;
    const ops = this.ops;
    const D = spec.hiddenSize;
    const V = spec.vocabSize;
    const embedW = ck.weight(spec.embedding, { keepBf16: true, shape: [V, D] });
    this.embed = ops.weight(embedW);
    spec.layers.forEach((ls, i) => {
      this.layers.push(this.loadLayer(ls, D, ck));
      opts.onProgress?.(i + 1, spec.layers.length + 1);
    });
    this.finalNorm = this.loadNorm(spec.finalNorm, D, ck);
    this.lmHead = spec.lmHead === spec.embedding ? this.embed : ops.weight(ck.weight(spec.lmHead, { keepBf16: true, shape: [V, D] }));
    if (spec.lmHeadBias) this.lmHeadBias = this.vec(ck.weight(spec.lmHeadBias, { shape: [V] }));
    opts.onProgress?.(spec.layers.length + 1, spec.layers.length + 1);
  }

  private vec(w: Weight | Float32Array, name = 'vector'): W {
    if (w instanceof Float32Array) return this.ops.vector(w, name);
    return this.ops.vector(w.data as Float32Array, w.name);
  }

  private loadNorm(spec: NormSpec, D: number, ck: WeightSource): DNorm<W> {
    const w = this.vec(ck.weight(`${spec.name}.weight`, { shape: [D] }));
    const b = spec.bias ? this.vec(ck.weight(`${spec.name}.bias`, { shape: [D] })) : undefined;
    return { spec, w, b };
  }

  private loadFfn(spec: DenseFfnSpec, D: number, ck: WeightSource): DFfn<W> {
    const f = loadGatedFfn(spec, D, ck, true);
    return { gate: this.ops.weight(f.gate), up: this.ops.weight(f.up), down: this.ops.weight(f.down), F: f.gate.shape[0]!, act: { kind: spec.act } };
  }

  private loadLayer(ls: LayerSpec, D: number, ck: WeightSource): DLayer<W, X> {
    const o = this.ops;
    const opt = <T>(w: T | undefined, f: (w: T) => W): W | undefined => (w === undefined ? undefined : f(w));
    let attn: DGqa<W> | DMla<W>;
    if (ls.attention.kind === 'gqa') {
      const a = loadGqaWeights(ls.attention, D, ck, true);
      attn = {
        kind: 'gqa', spec: ls.attention, rope: ropeTable(ls.attention.rope, this.spec.maxPositions),
        q: o.weight(a.q), k: o.weight(a.k), v: o.weight(a.v), o: o.weight(a.o),
        qb: opt(a.qb, (w) => this.vec(w)), kb: opt(a.kb, (w) => this.vec(w)), vb: opt(a.vb, (w) => this.vec(w)), ob: opt(a.ob, (w) => this.vec(w)),
        qNorm: opt(a.qNorm, (w) => this.vec(w, 'q_norm')), kNorm: opt(a.kNorm, (w) => this.vec(w, 'k_norm')),
        sinks: opt(a.sinks, (w) => this.vec(w, 'sinks')),
      };
    } else {
      const a = loadMlaWeights(ls.attention, D, ck, true);
      attn = {
        kind: 'mla', spec: ls.attention, rope: ropeTable(ls.attention.rope, this.spec.maxPositions),
        q: opt(a.q, (w) => o.weight(w)), qa: opt(a.qa, (w) => o.weight(w)), qaBias: opt(a.qaBias, (w) => this.vec(w)),
        qaNorm: opt(a.qaNorm, (w) => this.vec(w, 'q_a_layernorm')), qb: opt(a.qb, (w) => o.weight(w)),
        kva: o.weight(a.kva), kvaBias: opt(a.kvaBias, (w) => this.vec(w)), kvaNorm: this.vec(a.kvaNorm, 'kv_a_layernorm'),
        kvb: o.weight(a.kvb), o: o.weight(a.o), oBias: opt(a.oBias, (w) => this.vec(w)),
      };
    }
    let ffn: DLayer<W, X>['ffn'];
    if (ls.ffn.kind === 'dense') {
      ffn = { kind: 'dense', ...this.loadFfn(ls.ffn, D, ck) };
    } else {
      const m = ls.ffn;
      const E = m.numExperts;
      if (!isDeviceRouterSpec(m.router)) throw new UserError(`router ${m.router.kind} runs on the CPU only`);
      const routerW = o.weight(ck.weight(m.routerWeight, { shape: [E, D] }), true);
      const routerB = m.routerBias ? this.vec(ck.weight(m.routerBias, { shape: [E] })) : undefined;
      const cpuRouter = makeRouter(m.router, E, m.topK, ck);
      const bias = cpuRouter instanceof SigmoidGroupTopKRouter ? this.vec(cpuRouter.bias, 'e_score_correction_bias') : undefined;
      const ew = loadExperts(m.experts, E, D, ck, true);
      const F = ew[0]!.gate.shape[0]!;
      const experts = o.experts({
        E, D, F,
        gate: ew.map((e) => e.gate), up: ew.map((e) => e.up), down: ew.map((e) => e.down),
        gateBias: ew[0]!.gateBias ? ew.map((e) => e.gateBias!) : undefined,
        upBias: ew[0]!.upBias ? ew.map((e) => e.upBias!) : undefined,
        downBias: ew[0]!.downBias ? ew.map((e) => e.downBias!) : undefined,
      }, m.routerWeight.replace(/\.weight$/, '.experts'));
      const act: ActivationSpec = { kind: m.act, alpha: m.actOpts?.alpha, limit: m.actOpts?.limit };
      const shared = m.shared ? this.loadFfn(m.shared.ffn, D, ck) : undefined;
      const sharedGate = m.shared?.gate ? o.weight(ck.weight(`${m.shared.gate}.weight`, { shape: [1, D] }), true) : undefined;
      ffn = { kind: 'moe', spec: m, router: m.router, routerW, routerB, bias, experts, act, shared, sharedGate };
    }
    return { inputNorm: this.loadNorm(ls.inputNorm, D, ck), attn, postNorm: this.loadNorm(ls.postAttentionNorm, D, ck), ffn };
  }

  newCache(batch: number): DeviceKVCache<H> {
    return this.ops.newCache(this.layers.map((l) => l.attn.kind === 'gqa'
      ? { k: l.attn.spec.numKvHeads * l.attn.spec.headDim, v: l.attn.spec.numKvHeads * l.attn.spec.headDim }
      : { k: l.attn.spec.numHeads * (l.attn.spec.qkNopeDim + l.attn.spec.qkRopeDim), v: l.attn.spec.numHeads * l.attn.spec.vHeadDim }), batch);
  }

  private norm(n: DNorm<W>, x: H, rows: number, width: number): H {
    return n.spec.kind === 'rms'
      ? this.ops.rmsNorm(x, rows, width, n.w, n.spec.eps)
      : this.ops.layerNorm(x, rows, width, n.w, n.b, n.spec.eps);
  }

  /**
   * ids: B sequences of S tokens, batch-major. With `cache`, the tokens continue the cached sequences (positions
   * start at cache.length) and are appended to it.
   */
  async forward(ids: ArrayLike<number>, B: number, cache: DeviceKVCache<H> = this.newCache(B), opts: DeviceForwardOptions = {}): Promise<DeviceForwardResult> {
    const o = this.ops;
    const S = ids.length / B;
    if (!Number.isInteger(S) || S < 1) throw new UserError(`forward: ${ids.length} ids do not split into ${B} sequences`);
    if (cache.layers[0] && cache.layers[0].length !== B) throw new UserError(`forward: the cache holds ${cache.layers[0].length} sequences, not ${B}`);
    const D = this.spec.hiddenSize;
    const V = this.spec.vocabSize;
    const T = B * S;
    const start = cache.length;
    const idArr = new Int32Array(T);
    for (let i = 0; i < T; i++) {
      const id = ids[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new UserError(`token id ${id} is outside the vocabulary (0..${V - 1})`);
      idArr[i] = id;
    }
    const positions = Array.from({ length: S }, (_, i) => start + i);
    const cosSin = new Map<RopeTable, H>();
    const ropeFor = (t: RopeTable): H => {
      let h = cosSin.get(t);
      if (!h) { h = o.upload(ropeCosSin(t, positions), [S, t.invFreq.length, 2]); cosSin.set(t, h); }
      return h;
    };
    const rm = this.spec.residualMultiplier;
    const h = o.embed(this.embed, idArr, D, this.spec.embeddingMultiplier);
    const captured: H[] = [];
    const capturedAt: (number | undefined)[] = [];
    for (const [li, layer] of this.layers.entries()) {
      const x = this.norm(layer.inputNorm, h, T, D);
      let a: H;
      if (B === 1) {
        a = this.attention(layer.attn, x, S, start, cache.layers[li]![0]!, ropeFor);
      } else {
        a = o.empty([T, D]);
        for (let b = 0; b < B; b++) {
          const xs = o.sliceRows(x, D, b * S, S);
          const as = this.attention(layer.attn, xs, S, start, cache.layers[li]![b]!, ropeFor);
          o.writeRows(a, D, b * S, as, S);
          o.release(xs, as);
        }
      }
      o.release(x);
      o.addScaled(h, a, T * D, rm);
      o.release(a);
      const y = this.norm(layer.postNorm, h, T, D);
      const { out, experts } = this.ffn(layer.ffn, y, T, D);
      o.release(y);
      o.addScaled(h, out, T * D, rm);
      o.release(out);
      if (experts) {
        if (opts.captureExperts) { capturedAt[li] = captured.length; captured.push(experts); } else o.release(experts);
      }
      o.flush();
    }
    let last = h;
    let rows = T;
    if (opts.lastOnly && S > 1) {
      rows = B;
      last = o.empty([B, D]);
      for (let b = 0; b < B; b++) {
        const r = o.sliceRows(h, D, b * S + S - 1, 1);
        o.writeRows(last, D, b, r, 1);
        o.release(r);
      }
      o.release(h);
    }
    const hn = this.norm(this.finalNorm, last, rows, D);
    o.release(last);
    const logitsH = o.linear(hn, rows, D, this.lmHead, this.lmHeadBias);
    o.release(hn);
    if (this.spec.logitsScaling !== 1) o.scale(logitsH, rows * V, 1 / this.spec.logitsScaling);
    for (const c of cosSin.values()) o.release(c);
    const logits = await o.read(logitsH, rows * V);
    o.release(logitsH);
    let experts: (Int32Array | undefined)[] | undefined;
    if (opts.captureExperts) {
      experts = [];
      for (const [li, layer] of this.layers.entries()) {
        const at = capturedAt[li];
        if (at === undefined || layer.ffn.kind !== 'moe') { experts.push(undefined); continue; }
        experts.push(await o.readI32(captured[at]!, T * layer.ffn.spec.topK));
      }
      o.release(...captured);
    }
    return { logits, experts };
  }

  private attention(attn: DGqa<W> | DMla<W>, x: H, S: number, start: number, cache: DeviceLayerCache<H>, ropeFor: (t: RopeTable) => H): H {
    return attn.kind === 'gqa' ? this.gqa(attn, x, S, start, cache, ropeFor(attn.rope)) : this.mla(attn, x, S, start, cache, ropeFor(attn.rope));
  }

  private gqa(a: DGqa<W>, x: H, S: number, start: number, cache: DeviceLayerCache<H>, cs: H): H {
    const o = this.ops;
    const { numHeads: H, numKvHeads: KVH, headDim: hd } = a.spec;
    const D = this.spec.hiddenSize;
    let q = o.linear(x, S, D, a.q, a.qb);
    let k = o.linear(x, S, D, a.k, a.kb);
    const v = o.linear(x, S, D, a.v, a.vb);
    if (a.qNorm && a.kNorm) {
      const qn = o.rmsNorm(q, S, H * hd, a.qNorm, a.spec.qkNormEps);
      const kn = o.rmsNorm(k, S, KVH * hd, a.kNorm, a.spec.qkNormEps);
      o.release(q, k);
      q = qn; k = kn;
    }
    const half = a.rope.invFreq.length;
    o.rope(q, S, H, hd, cs, half, a.rope.interleaved, 0);
    o.rope(k, S, KVH, hd, cs, half, a.rope.interleaved, 0);
    cache.append(k, v, S);
    o.release(k, v);
    const att = o.attention(q, S, H, hd, cache.k, cache.v, cache.length, KVH, hd, start, {
      scale: a.spec.scale, window: a.spec.slidingWindow, sinks: a.sinks,
    });
    o.release(q);
    const out = o.linear(att, S, H * hd, a.o, a.ob);
    o.release(att);
    return out;
  }

  private mla(a: DMla<W>, x: H, S: number, start: number, cache: DeviceLayerCache<H>, cs: H): H {
    const o = this.ops;
    const { numHeads: H, kvLoraRank: R, qkNopeDim: dn, qkRopeDim: dr, vHeadDim: dv, normEps } = a.spec;
    const D = this.spec.hiddenSize;
    const qk = dn + dr;
    let q: H;
    if (a.q) {
      q = o.linear(x, S, D, a.q);
    } else {
      const r = a.spec.qLoraRank!;
      const qa = o.linear(x, S, D, a.qa!, a.qaBias);
      const qan = o.rmsNorm(qa, S, r, a.qaNorm!, normEps);
      q = o.linear(qan, S, r, a.qb!);
      o.release(qa, qan);
    }
    const ckv = o.linear(x, S, D, a.kva, a.kvaBias); // [S, R + dr]
    const latent = o.empty([S, R]);
    const kpe = o.empty([S, dr]);
    o.copyCols(ckv, R + dr, 0, latent, R, 0, R, S);
    o.copyCols(ckv, R + dr, R, kpe, dr, 0, dr, S);
    o.release(ckv);
    const ln = o.rmsNorm(latent, S, R, a.kvaNorm, normEps);
    const kv = o.linear(ln, S, R, a.kvb); // [S, H, dn + dv]
    o.release(latent, ln);
    const half = a.rope.invFreq.length;
    o.rope(q, S, H, qk, cs, half, a.rope.interleaved, dn);
    o.rope(kpe, S, 1, dr, cs, half, a.rope.interleaved, 0);
    const k = o.empty([S * H, qk]);
    const v = o.empty([S * H, dv]);
    o.copyCols(kv, dn + dv, 0, k, qk, 0, dn, S * H);
    o.copyCols(kpe, dr, 0, k, qk, dn, dr, S * H, H);
    o.copyCols(kv, dn + dv, dn, v, dv, 0, dv, S * H);
    o.release(kv, kpe);
    cache.append(k, v, S);
    o.release(k, v);
    const att = o.attention(q, S, H, qk, cache.k, cache.v, cache.length, H, dv, start, { scale: a.spec.scale });
    o.release(q);
    const out = o.linear(att, S, H * dv, a.o, a.oBias);
    o.release(att);
    return out;
  }

  private gatedFfn(f: DFfn<W>, x: H, T: number, D: number): H {
    const o = this.ops;
    const g = o.linear(x, T, D, f.gate);
    const u = o.linear(x, T, D, f.up);
    o.gatedAct(g, u, T * f.F, f.act);
    o.release(u);
    const y = o.linear(g, T, f.F, f.down);
    o.release(g);
    return y;
  }

  private ffn(f: DLayer<W, X>['ffn'], y: H, T: number, D: number): { out: H; experts?: H } {
    const o = this.ops;
    if (f.kind === 'dense') return { out: this.gatedFfn(f, y, T, D) };
    const k = f.spec.topK;
    const logits = o.linear(y, T, D, f.routerW, f.routerB);
    const r = o.route(logits, T, f.spec.numExperts, k, f.router, f.bias);
    o.release(logits);
    const out = o.moe(y, T, r.experts, r.gates, k, f.experts, f.act);
    o.release(r.gates);
    if (f.shared) {
      const s = this.gatedFfn(f.shared, y, T, D);
      if (f.sharedGate) {
        const g = o.linear(y, T, D, f.sharedGate);
        o.addSigmoidGated(out, s, g, T, D);
        o.release(g);
      } else {
        o.addScaled(out, s, T * D, 1);
      }
      o.release(s);
    }
    return { out, experts: r.experts };
  }
}
