/**
 * Shared machinery of the router zoo (the research routers in this folder; zoo.ts builds them):
 * parameter initialisation, deterministic top-k, group-limited masking, the token-choice pipeline most zoo routers
 * share (score → select → gather gates → renormalise → scale → capacity), and the balancing aux losses.
 *
 * Conventions (all zoo routers):
 *  - Router weight `${prefix}.gate.weight` [E', D] (E' = FFN experts + extra ids the router scores), no bias.
 *  - Weights start uniform in ±1/√fan_in (torch.nn.Linear's default bound) from the options' rng.
 *  - Top-k ties go to the lower expert id; slots are token-major (token t's slots in choice order) unless a router
 *    says otherwise (expert choice is expert-major).
 *  - Aux losses (already × coefficient) are computed only when `ctx.training`.
 */
import { param, type FArray, type Var } from '../../train/autograd/var.js';
import { scale, sigmoid } from '../../train/autograd/ops/elementwise.js';
import { gatherElements } from '../../train/autograd/ops/shape.js';
import { softmax } from '../../train/autograd/ops/softmax.js';
import type { ZooBalance } from './router.js';
import type { ExpertKind, RouterContext, SlotRouting, TrainableRouter, TrainableRouterOptions } from './trainable.js';
import { segmentNormalize } from './zoo-ops.js';
import { switchLoadBalancingLoss } from '../balance/switch-loss.js';
import { routerZLoss } from '../balance/z-loss.js';
import { softOrthogonalityLoss } from '../balance/orthogonality.js';
import { applyCapacity, expertCapacity } from '../balance/capacity.js';

export type AuxLoss = SlotRouting['aux'][number];

export function newArray(precision: 'f32' | 'f64', n: number): FArray {
  return precision === 'f64' ? new Float64Array(n) : new Float32Array(n);
}

/** A trainable [rows, cols] (or [n]) parameter, uniform in ±bound (default 1/√fan_in, fan_in = last dim). */
export function initParam(o: TrainableRouterOptions, name: string, shape: readonly number[], bound?: number): Var {
  const n = shape.reduce((a, b) => a * b, 1);
  const b = bound ?? 1 / Math.sqrt(shape[shape.length - 1]!);
  const a = newArray(o.precision, n);
  for (let i = 0; i < n; i++) a[i] = (o.rng() * 2 - 1) * b;
  return param(a, shape, name);
}

export function zeroParam(o: TrainableRouterOptions, name: string, shape: readonly number[]): Var {
  return param(newArray(o.precision, shape.reduce((a, b) => a * b, 1)), shape, name);
}

/**
 * Indices of the k largest row[off + i] over i in 0..n−1 with allowed(i) (descending; ties → lower i), written to
 * `out`; returns how many were found (< k only when fewer are allowed). Selection for small k, a sort otherwise
 * (expert choice picks C ≫ 1 of T tokens, top-p orders all experts).
 */
export function topkAllowed(row: ArrayLike<number>, off: number, n: number, k: number, out: Int32Array, allowed?: Uint8Array): number {
  if (k > 8) {
    const idx: number[] = [];
    for (let i = 0; i < n; i++) if (!allowed || allowed[i]) idx.push(i);
    idx.sort((a, b) => row[off + b]! - row[off + a]! || a - b);
    const m = Math.min(k, idx.length);
    for (let j = 0; j < m; j++) out[j] = idx[j]!;
    return m;
  }
  let m = 0;
  for (let j = 0; j < k; j++) {
    let best = -1;
    let bv = -Infinity;
    for (let i = 0; i < n; i++) {
      if (allowed && !allowed[i]) continue;
      let taken = false;
      for (let q = 0; q < m; q++) if (out[q] === i) { taken = true; break; }
      if (taken) continue;
      const v = row[off + i]!;
      if (best < 0 || v > bv) { best = i; bv = v; }
    }
    if (best < 0) break;
    out[m++] = best;
  }
  return m;
}

export interface GroupLimit {
  nGroup: number;
  topkGroup: number;
  /** Group score: the max member score (DeepSeek-V2) or the sum of the two largest (DeepSeek-V3). */
  groupScore: 'max' | 'top2-sum';
}

export function checkGroups(name: string, E: number, g: GroupLimit): void {
  if (!Number.isInteger(g.nGroup) || g.nGroup < 1 || E % g.nGroup !== 0) throw new Error(`${name}: ${E} experts do not split into ${g.nGroup} groups`);
  if (!Number.isInteger(g.topkGroup) || g.topkGroup < 1 || g.topkGroup > g.nGroup) throw new Error(`${name}: topkGroup ${g.topkGroup} must be in 1..${g.nGroup}`);
}

/**
 * Group-limited selection mask over E' ids: the E FFN experts are split into nGroup consecutive groups, each scored
 * from `choice` (max, or sum of the top two); experts outside the topkGroup best groups are excluded (the paper's
 * rule: they cannot be chosen at all). Extra ids (≥ E) stay allowed.
 */
export function groupMask(choice: ArrayLike<number>, off: number, E: number, Eall: number, g: GroupLimit, out: Uint8Array): void {
  const size = E / g.nGroup;
  const gs = new Float64Array(g.nGroup);
  for (let q = 0; q < g.nGroup; q++) {
    let a = -Infinity;
    let b = -Infinity;
    for (let i = 0; i < size; i++) {
      const v = choice[off + q * size + i]!;
      if (v > a) { b = a; a = v; } else if (v > b) b = v;
    }
    gs[q] = g.groupScore === 'max' || size === 1 ? a : a + b;
  }
  const kept = new Int32Array(g.topkGroup);
  topkAllowed(gs, 0, g.nGroup, g.topkGroup, kept);
  out.fill(0, 0, E);
  for (const q of kept) out.fill(1, q * size, (q + 1) * size);
  out.fill(1, E, Eall);
}

/** The balancing aux losses a ZooBalance asks for (lb on `lbProbs` + `experts`, z on logits, ortho on weight). */
export function balanceAux(b: Pick<ZooBalance, 'lbCoef' | 'zCoef' | 'orthoCoef'>, a: {
  logits: Var; weight?: Var; lbProbs?: Var; experts?: Int32Array; lbWeights?: ArrayLike<number>;
}): AuxLoss[] {
  const aux: AuxLoss[] = [];
  if (b.lbCoef && a.lbProbs && a.experts) aux.push({ name: 'load_balancing', loss: scale(switchLoadBalancingLoss(a.lbProbs, a.experts, a.lbWeights), b.lbCoef) });
  if (b.zCoef) aux.push({ name: 'z_loss', loss: scale(routerZLoss(a.logits), b.zCoef) });
  if (b.orthoCoef && a.weight) aux.push({ name: 'orthogonality', loss: scale(softOrthogonalityLoss(a.weight), b.orthoCoef) });
  return aux;
}

export interface TokenChoiceConfig {
  score: 'softmax' | 'sigmoid';
  k: number;
  /** FFN experts E (ids 0..E−1); logits have E' ≥ E columns. */
  E: number;
  /**
   * Renormalise each token's chosen gates to sum to 1: true (all chosen), 'ffn' (only the chosen FFN experts, as
   * AdaMoE does; extra-id gates keep their probability), false (raw scores).
   */
  normTopK: boolean | 'ffn';
  /** Routed scaling factor applied to every gate after renormalisation. */
  scaling?: number;
  /** Added to the scores for selection only (auxiliary-loss-free balancing). Length E (FFN experts). */
  selectionBias?: ArrayLike<number>;
  groups?: GroupLimit;
  balance: ZooBalance;
  /** Per-id weights η of the load-balancing loss (MoE++'s heterogeneous loss). */
  lbWeights?: ArrayLike<number>;
}

/**
 * The token-choice pipeline: scores = softmax | sigmoid(logits); per token, the k best of (score + selection bias)
 * among the allowed ids; gate = score of the chosen id (renormalised / scaled as configured); then capacity dropping
 * (training, or always with capacityAtEval). The load-balancing loss sees every chosen slot (before dropping) and the
 * probabilities: softmax output, or sigmoid scores normalised per token (DeepSeek-V3's balance-loss convention).
 */
export function tokenChoiceRoute(logits: Var, weight: Var | undefined, cfg: TokenChoiceConfig, ctx: RouterContext): SlotRouting {
  const T = logits.shape[0]!;
  const Eall = logits.shape[1]!;
  const { E, k } = cfg;
  if (k > Eall) throw new Error(`top-k ${k} exceeds the ${Eall} ids the router scores`);
  const scores = cfg.score === 'softmax' ? softmax(logits) : sigmoid(logits);
  const s = scores.data;
  const n = T * k;
  const tokens = new Int32Array(n);
  const experts = new Int32Array(n);
  const ranks = new Int32Array(n);
  const choice = new Float64Array(Eall);
  const allowed = cfg.groups ? new Uint8Array(Eall) : undefined;
  const sel = new Int32Array(k);
  let m = 0;
  for (let t = 0; t < T; t++) {
    for (let e = 0; e < Eall; e++) choice[e] = s[t * Eall + e]! + (cfg.selectionBias && e < E ? cfg.selectionBias[e]! : 0);
    if (allowed) groupMask(choice, 0, E, Eall, cfg.groups!, allowed);
    const got = topkAllowed(choice, 0, Eall, k, sel, allowed);
    for (let j = 0; j < got; j++) { tokens[m] = t; experts[m] = sel[j]!; ranks[m] = j; m++; }
  }
  let toks = tokens.subarray(0, m);
  let exps = experts.subarray(0, m);
  const rks = ranks.subarray(0, m);
  const idx = new Int32Array(m);
  for (let i = 0; i < m; i++) idx[i] = toks[i]! * Eall + exps[i]!;
  let gates = gatherElements(scores, idx);
  if (cfg.normTopK) {
    const seg = new Int32Array(m);
    for (let i = 0; i < m; i++) seg[i] = cfg.normTopK === 'ffn' && exps[i]! >= E ? -1 : toks[i]!;
    gates = segmentNormalize(gates, seg, T, cfg.score === 'sigmoid' ? 1e-20 : 0);
  }
  if (cfg.scaling !== undefined && cfg.scaling !== 1) gates = scale(gates, cfg.scaling);
  const chosen = exps;
  const b = cfg.balance;
  if (b.capacityFactor !== undefined && (ctx.training || b.capacityAtEval)) {
    const C = expertCapacity(T, k, E, b.capacityFactor);
    const kept = applyCapacity({ tokens: toks, experts: exps, ranks: rks, scores: gates.data }, E, C, b.capacityPriority ?? 'position');
    if (kept.length < m) {
      gates = gatherElements(gates, kept);
      toks = Int32Array.from(kept, (i) => toks[i]!);
      exps = Int32Array.from(kept, (i) => exps[i]!);
    }
  }
  let aux: AuxLoss[] = [];
  if (ctx.training) {
    let lbProbs: Var | undefined;
    if (b.lbCoef) {
      if (cfg.score === 'softmax') lbProbs = scores;
      else {
        const rowSeg = new Int32Array(T * Eall);
        for (let i = 0; i < rowSeg.length; i++) rowSeg[i] = Math.floor(i / Eall);
        lbProbs = segmentNormalize(scores, rowSeg, T, 1e-20);
      }
    }
    aux = balanceAux(b, { logits, weight, lbProbs, experts: chosen.slice(), lbWeights: cfg.lbWeights });
  }
  return { T, tokens: toks.slice(), experts: exps.slice(), gates, logits, aux };
}

/** Common fields of the zoo's TrainableRouters. */
export abstract class ZooRouterBase implements TrainableRouter {
  abstract readonly name: string;
  readonly numExperts: number;
  readonly extraExperts: readonly ExpertKind[] = [];
  /** `${prefix}.gate.weight` */
  readonly weight: Var;

  constructor(protected readonly o: TrainableRouterOptions, rows: number, cols = o.D) {
    this.numExperts = o.numExperts;
    this.weight = initParam(o, `${o.prefix}.gate.weight`, [rows, cols]);
  }

  params(): Var[] {
    return [this.weight];
  }

  abstract route(x: Var, ctx: RouterContext): SlotRouting;

  protected checkX(x: Var): number {
    if (x.shape.length !== 2 || x.shape[1] !== this.o.D) throw new Error(`${this.name}: x must be [T, ${this.o.D}], got [${x.shape.join(', ')}]`);
    return x.shape[0]!;
  }
}
