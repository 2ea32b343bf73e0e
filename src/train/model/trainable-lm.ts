/**
 * The differentiable causal MoE language model, assembled from a ModelSpec like the inference CausalLM and with the
 * same math: embedding (× embeddingMultiplier) → layers of (norm → attention → residual (× residualMultiplier),
 * norm → dense FFN or MoE block → residual) → final norm → LM head (+ bias, ÷ logitsScaling).
 *
 * Parameters are Vars named as the checkpoint names its tensors (ParamStore), either loaded from a checkpoint or
 * initialised from a seed. `loss` is the next-token cross-entropy as transformers computes it (labels = inputs,
 * shifted inside the loss) plus the auxiliary losses: the transformers load-balancing loss × routerAuxLossCoef for
 * the architectures whose transformers model adds it, and whatever the routers add themselves.
 */
import type { Checkpoint, Config } from '../../io/checkpoint.js';
import type { LayerSpec, ModelSpec } from '../../models/spec.js';
import type { RouterContext, SlotRouting, TrainableRouter } from '../../moe/routers/trainable.js';
import type { Var } from '../autograd/var.js';
import { linear } from '../autograd/ops/linear.js';
import { add, scale } from '../autograd/ops/elementwise.js';
import { embedding } from '../autograd/ops/embedding.js';
import { crossEntropy } from '../autograd/ops/softmax.js';
import { UserError } from '../../util/errors.js';
import { ParamStore, type InitOptions, type Precision } from './params.js';
import { TrainableNorm } from './norm.js';
import { TrainableGqaAttention } from './gqa-attention.js';
import { TrainableMlaAttention } from './mla-attention.js';
import { TrainableDenseFfn, ffnWidth } from './ffn.js';
import { TrainableMoeBlock } from './moe-block.js';
import { loadBalancingLossVar } from './aux-loss.js';
import { ffnWidthsFromConfig, specForNewModel, type FfnWidths } from './config.js';

/** transformers model types whose ForCausalLM adds `router_aux_loss_coef × load_balancing_loss` to the loss. */
const HF_AUX_LOSS_TYPES = new Set(['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe', 'granitemoe', 'phimoe', 'gpt_oss']);

/** The load-balancing coefficient transformers applies for this spec (0 for DeepSeek, which adds none). */
export function defaultAuxCoef(spec: ModelSpec): number {
  return HF_AUX_LOSS_TYPES.has(spec.modelType) ? spec.routerAuxLossCoef ?? 0 : 0;
}

/** Labels = inputs, shifted: target of position s is ids[s + 1] within its sequence; the last position is ignored (−1). */
export function nextTokenTargets(ids: ArrayLike<number>, B: number, S: number): Int32Array {
  const t = new Int32Array(B * S);
  for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) t[b * S + s] = s + 1 < S ? ids[b * S + s + 1]! : -1;
  return t;
}

export interface TrainableLMOptions {
  /** float32 (training) or float64 (gradient checks). Default f32. */
  precision?: Precision;
  /** Seed of the random initialisation (random models). Default 0. */
  seed?: number;
  init?: InitOptions;
  /** FFN widths (random models; a checkpoint carries its own). */
  widths?: FfnWidths;
  /** Checkpoint mode: fail when the checkpoint has tensors the model does not use (default true). */
  strict?: boolean;
  /** sigmoid-group-topk routers: auxiliary-loss-free bias update speed (default 0.001). */
  biasUpdateRate?: number;
}

export interface ForwardOptions {
  /** Passed to the routers (noise, capacity...). Default true. */
  training?: boolean;
}

export interface ForwardOutput {
  /** [B·S, V] */
  logits: Var;
  /** One routing per MoE layer, in layer order (see `moeLayers`). */
  routings: SlotRouting[];
  /** Auxiliary losses the routers added (already × their coefficients). */
  aux: { name: string; loss: Var }[];
}

export interface LossOptions extends ForwardOptions {
  /** Coefficient of the transformers load-balancing loss (default `defaultAuxCoef(spec)`); 0 disables it. */
  auxCoef?: number;
  /** Explicit targets [B·S] (−1 = ignore) instead of the next tokens of `ids`. */
  targets?: Int32Array;
}

export interface LossOutput {
  /** lm + Σ aux: what to differentiate. */
  loss: Var;
  /** Mean next-token cross-entropy. */
  lm: Var;
  /** Weighted auxiliary losses (router ones, then 'load_balancing' = coef × lbLoss). */
  aux: { name: string; loss: Var }[];
  /** The unweighted transformers load-balancing loss, when it was computed. */
  lbLoss?: Var;
  logits: Var;
  routings: SlotRouting[];
}

type Attn = TrainableGqaAttention | TrainableMlaAttention;
type Ffn = TrainableDenseFfn | TrainableMoeBlock;

class Layer {
  readonly inputNorm: TrainableNorm;
  readonly attn: Attn;
  readonly postNorm: TrainableNorm;
  readonly ffn: Ffn;
  constructor(spec: LayerSpec, index: number, D: number, store: ParamStore, maxPositions: number, widths: FfnWidths, routerStd: number,
    biasUpdateRate: number | undefined) {
    this.inputNorm = new TrainableNorm(spec.inputNorm, D, store);
    this.attn = spec.attention.kind === 'gqa'
      ? new TrainableGqaAttention(spec.attention, D, store, maxPositions)
      : new TrainableMlaAttention(spec.attention, D, store, maxPositions);
    this.postNorm = new TrainableNorm(spec.postAttentionNorm, D, store);
    const f = spec.ffn;
    this.ffn = f.kind === 'dense'
      ? new TrainableDenseFfn(f, D, ffnWidth(store, `${f.gate}.weight`, widths.dense, 'dense'), store)
      : new TrainableMoeBlock(f, index, D, store, widths, routerStd, biasUpdateRate);
  }
}

export class TrainableLM {
  readonly layers: Layer[] = [];
  readonly embed: Var;
  readonly finalNorm: TrainableNorm;
  readonly lmHead: Var;
  readonly lmHeadBias?: Var;
  readonly precision: Precision;
  /** Indices of the MoE layers (ForwardOutput.routings[i] belongs to layer moeLayers[i]). */
  readonly moeLayers: number[] = [];
  private readonly positionsCache = new Map<string, Int32Array>();

  /** Prefer the static constructors: `fromCheckpoint`, `random`, `fromConfig`. */
  constructor(readonly spec: ModelSpec, readonly store: ParamStore, opts: TrainableLMOptions = {}) {
    this.precision = store.precision;
    const D = spec.hiddenSize;
    const V = spec.vocabSize;
    const widths = opts.widths ?? {};
    const routerStd = store.matrixStd(D);
    this.embed = store.param(spec.embedding, [V, D], 'embedding');
    spec.layers.forEach((ls, i) => {
      const layer = new Layer(ls, i, D, store, spec.maxPositions, widths, routerStd, opts.biasUpdateRate);
      this.layers.push(layer);
      if (layer.ffn instanceof TrainableMoeBlock) this.moeLayers.push(i);
    });
    this.finalNorm = new TrainableNorm(spec.finalNorm, D, store);
    this.lmHead = store.param(spec.lmHead, [V, D], spec.lmHead === spec.embedding ? 'embedding' : 'matrix');
    if (spec.lmHeadBias) this.lmHeadBias = store.param(spec.lmHeadBias, [V], 'zeros');
    // Router state the checkpoint carries (e.g. e_score_correction_bias).
    for (const r of this.routers()) {
      const st = r.state?.();
      if (!st || !r.loadState) continue;
      const found: Record<string, number[]> = {};
      for (const key of Object.keys(st)) {
        const t = store.takeState(key);
        if (t) found[key] = Array.from(t.data);
      }
      if (Object.keys(found).length) r.loadState(found);
    }
    const left = store.unclaimed();
    if (left.length && (opts.strict ?? true)) {
      throw new UserError(`the checkpoint has ${left.length} tensor(s) this ${spec.modelType} model does not use: ${left.slice(0, 5).join(', ')}${left.length > 5 ? ', …' : ''}`);
    }
  }

  /** Every tensor of `ck` as a parameter (f32, or f64 for gradient checks). */
  static fromCheckpoint(spec: ModelSpec, ck: Checkpoint, opts: TrainableLMOptions = {}): TrainableLM {
    return new TrainableLM(spec, ParamStore.fromCheckpoint(ck, opts.precision ?? 'f32'), opts);
  }

  /** A randomly initialised model (seeded); `opts.widths` gives the FFN widths the spec does not carry. */
  static random(spec: ModelSpec, opts: TrainableLMOptions = {}): TrainableLM {
    return new TrainableLM(spec, new ParamStore(opts.precision ?? 'f32', opts.seed ?? 0, opts.init), opts);
  }

  /** A randomly initialised model described by a config.json object (spec and widths from it). */
  static fromConfig(config: Config, opts: TrainableLMOptions & { layout?: 'per-expert' | 'fused' } = {}): TrainableLM {
    const spec = specForNewModel(config, opts.layout);
    return TrainableLM.random(spec, { ...opts, widths: { ...ffnWidthsFromConfig(config), ...opts.widths } });
  }

  /** Trainable parameters (each once; a tied embedding appears once), in creation order. */
  params(): Var[] {
    return this.store.entries().map(([, v]) => v);
  }

  namedParams(): Map<string, Var> {
    return new Map(this.store.entries());
  }

  /** The router of each MoE layer, in `moeLayers` order. */
  routers(): TrainableRouter[] {
    return this.layers.flatMap((l) => (l.ffn instanceof TrainableMoeBlock ? [l.ffn.router] : []));
  }

  zeroGrad(): void {
    for (const p of this.params()) p.zeroGrad();
  }

  private positions(B: number, S: number): Int32Array {
    const key = `${B}x${S}`;
    let p = this.positionsCache.get(key);
    if (!p) {
      p = new Int32Array(B * S);
      for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) p[b * S + s] = s;
      this.positionsCache.set(key, p);
    }
    return p;
  }

  /** ids: B sequences of S tokens, batch-major. */
  forward(ids: ArrayLike<number>, B: number, S: number, opts: ForwardOptions = {}): ForwardOutput {
    if (!(B >= 1 && S >= 1) || ids.length !== B * S) throw new UserError(`forward: ${ids.length} ids are not ${B} sequences of ${S}`);
    if (S > this.spec.maxPositions) throw new UserError(`forward: sequence length ${S} exceeds max_position_embeddings ${this.spec.maxPositions}`);
    const spec = this.spec;
    const pos = this.positions(B, S);
    const ctx: RouterContext = { layer: 0, carry: new Map(), training: opts.training ?? true };
    const rm = spec.residualMultiplier;
    const residual = (h: Var, y: Var): Var => add(h, rm === 1 ? y : scale(y, rm));
    let h = embedding(this.embed, ids);
    if (spec.embeddingMultiplier !== 1) h = scale(h, spec.embeddingMultiplier);
    const routings: SlotRouting[] = [];
    const aux: { name: string; loss: Var }[] = [];
    this.layers.forEach((layer, li) => {
      h = residual(h, layer.attn.forward(layer.inputNorm.apply(h), B, S, pos));
      const y = layer.postNorm.apply(h);
      if (layer.ffn instanceof TrainableMoeBlock) {
        ctx.layer = li;
        const r = layer.ffn.forward(y, ctx);
        routings.push(r.routing);
        for (const a of r.routing.aux) aux.push({ name: `layer${li}.${a.name}`, loss: a.loss });
        h = residual(h, r.out);
      } else {
        h = residual(h, layer.ffn.forward(y));
      }
    });
    h = this.finalNorm.apply(h);
    let logits = linear(h, this.lmHead, this.lmHeadBias);
    if (spec.logitsScaling !== 1) logits = scale(logits, 1 / spec.logitsScaling);
    return { logits, routings, aux };
  }

  /** Next-token loss of `ids` (labels = inputs, as transformers shifts them) plus the auxiliary losses. */
  loss(ids: ArrayLike<number>, B: number, S: number, opts: LossOptions = {}): LossOutput {
    const f = this.forward(ids, B, S, opts);
    const lm = crossEntropy(f.logits, opts.targets ?? nextTokenTargets(ids, B, S));
    const aux = [...f.aux];
    const coef = opts.auxCoef ?? defaultAuxCoef(this.spec);
    let lbLoss: Var | undefined;
    if (coef !== 0 && f.routings.length) {
      const k = this.spec.layers.find((l) => l.ffn.kind === 'moe')?.ffn;
      lbLoss = loadBalancingLossVar(f.routings.map((r) => r.logits), k && k.kind === 'moe' ? k.topK : 1);
      aux.push({ name: 'load_balancing', loss: scale(lbLoss, coef) });
    }
    let loss = lm;
    for (const a of aux) loss = add(loss, a.loss);
    return { loss, lm, aux, lbLoss, logits: f.logits, routings: f.routings };
  }

  /**
   * End of an optimiser step: each router's `afterStep` with its layer's routings of every forward of the step
   * (one entry per forward / micro-batch, each as ForwardOutput.routings).
   */
  afterStep(forwards: readonly (readonly SlotRouting[])[]): void {
    this.routers().forEach((r, i) => r.afterStep?.(forwards.map((f) => f[i]!).filter((x) => x !== undefined)));
  }

  /** Non-parameter router state (keys are checkpoint tensor names for the standard routers). */
  state(): Record<string, number[]> {
    const out: Record<string, number[]> = {};
    for (const r of this.routers()) Object.assign(out, r.state?.() ?? {});
    return out;
  }

  loadState(s: Record<string, number[]>): void {
    for (const r of this.routers()) r.loadState?.(s);
  }
}
