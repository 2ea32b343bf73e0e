/**
 * The router zoo: RouterSpec → TrainableRouter for the research routers (one file each in this folder), plus the
 * helpers the `switchyard_moe` model type needs to read a router spec from config.json.
 *
 *   balanced-softmax-topk  softmax top-k + Switch LB / z-loss / orthogonality / capacity   balanced-softmax-topk.ts
 *   aux-free-sigmoid       sigmoid + auxiliary-loss-free bias (DeepSeek-V3)                aux-free-sigmoid.ts
 *   group-limited-topk     DeepSeek-V2/V3 group-limited top-k                              group-limited-topk.ts
 *   expert-choice          experts pick their top-C tokens (Zhou et al. 2022)              expert-choice.ts
 *   null-experts           AdaMoE null experts                                             null-experts.ts
 *   moe-plus-plus          MoE++ zero / copy / constant experts + gating residuals         moe-plus-plus.ts
 *   top-p                  dynamic top-p routing (Huang et al. 2024)                       top-p.ts
 *   relu                   ReMoE ReLU routing with adaptive L1                             relu-router.ts
 *   recurrent              RMoE layerwise GRU router                                       recurrent-router.ts
 * Balancing pieces live in src/moe/balance/.
 */
import type { RouterSpec } from './router.js';
import type { ExpertKind, TrainableRouter, TrainableRouterOptions } from './trainable.js';
import { BalancedSoftmaxTopKRouter } from './balanced-softmax-topk.js';
import { AuxFreeSigmoidRouter } from './aux-free-sigmoid.js';
import { GroupLimitedTopKRouter } from './group-limited-topk.js';
import { ExpertChoiceRouter } from './expert-choice.js';
import { NullExpertsRouter } from './null-experts.js';
import { MoePlusPlusRouter } from './moe-plus-plus.js';
import { TopPRouter } from './top-p.js';
import { ReluRouter } from './relu-router.js';
import { RecurrentRouter } from './recurrent-router.js';

export const ZOO_KINDS = [
  'balanced-softmax-topk', 'aux-free-sigmoid', 'group-limited-topk', 'expert-choice', 'null-experts', 'moe-plus-plus',
  'top-p', 'relu', 'recurrent',
] as const;

export type ZooKind = (typeof ZOO_KINDS)[number];
export type ZooRouterSpec = Extract<RouterSpec, { kind: ZooKind }>;

export function isZooRouterSpec(spec: RouterSpec): spec is ZooRouterSpec {
  return (ZOO_KINDS as readonly string[]).includes(spec.kind);
}

export function makeZooRouter(spec: RouterSpec, o: TrainableRouterOptions): TrainableRouter {
  if (!isZooRouterSpec(spec)) throw new Error(`no trainable router for ${spec.kind}`);
  switch (spec.kind) {
    case 'balanced-softmax-topk': return new BalancedSoftmaxTopKRouter(spec, o);
    case 'aux-free-sigmoid': return new AuxFreeSigmoidRouter(spec, o);
    case 'group-limited-topk': return new GroupLimitedTopKRouter(spec, o);
    case 'expert-choice': return new ExpertChoiceRouter(spec, o);
    case 'null-experts': return new NullExpertsRouter(spec, o);
    case 'moe-plus-plus': return new MoePlusPlusRouter(spec, o);
    case 'top-p': return new TopPRouter(spec, o);
    case 'relu': return new ReluRouter(spec, o);
    case 'recurrent': return new RecurrentRouter(spec, o);
  }
}

/** The extra (zero-computation) expert kinds a router spec declares, in id order after the FFN experts. */
export function zooExtraExperts(spec: RouterSpec): ExpertKind[] {
  if (spec.kind === 'null-experts') return Array.from({ length: spec.numNull }, () => 'zero');
  if (spec.kind === 'moe-plus-plus') {
    return [
      ...Array.from({ length: spec.zero }, () => 'zero' as const),
      ...Array.from({ length: spec.copy }, () => 'copy' as const),
      ...Array.from({ length: spec.constant }, () => 'constant' as const),
    ];
  }
  return [];
}

type FieldType = 'number' | 'int' | 'boolean' | string[];
const BALANCE: Record<string, FieldType> = {
  lbCoef: 'number', zCoef: 'number', orthoCoef: 'number', capacityFactor: 'number', capacityPriority: ['position', 'score'], capacityAtEval: 'boolean',
};
/** Per kind: field → [type, required]. */
const FIELDS: Record<string, Record<string, [FieldType, boolean]>> = {
  'softmax-topk': { normTopK: ['boolean', true] },
  'topk-softmax': {},
  'group-limited-greedy': { nGroup: ['int', true], topkGroup: ['int', true], method: [['greedy', 'group_limited_greedy'], true], normTopK: ['boolean', true], scaling: ['number', true] },
  'sigmoid-group-topk': { nGroup: ['int', true], topkGroup: ['int', true], normTopK: ['boolean', true], scaling: ['number', true], biasName: [[], false] },
  'balanced-softmax-topk': { normTopK: ['boolean', true] },
  'aux-free-sigmoid': { normTopK: ['boolean', true], scaling: ['number', false], biasUpdateRate: ['number', false], nGroup: ['int', false], topkGroup: ['int', false] },
  'group-limited-topk': { score: [['softmax', 'sigmoid'], true], nGroup: ['int', true], topkGroup: ['int', true], groupScore: [['max', 'top2-sum'], false], normTopK: ['boolean', true], scaling: ['number', false] },
  'expert-choice': { capacityFactor: ['number', false], zCoef: ['number', false], orthoCoef: ['number', false] },
  'null-experts': { numNull: ['int', true], normTopK: ['boolean', true] },
  'moe-plus-plus': { zero: ['int', true], copy: ['int', true], constant: ['int', true], gatingResidual: ['boolean', true], tau: ['number', false], normTopK: ['boolean', false] },
  'top-p': { threshold: ['number', true], maxK: ['int', false], entropyCoef: ['number', false] },
  'relu': { targetActive: ['number', false], l1Init: ['number', false], l1Multiplier: ['number', false], balancedL1: ['boolean', false], zCoef: ['number', false], orthoCoef: ['number', false] },
  'recurrent': { projDim: ['int', true], hiddenDim: ['int', false], normTopK: ['boolean', true] },
};
const WITH_BALANCE = new Set(['balanced-softmax-topk', 'aux-free-sigmoid', 'group-limited-topk', 'null-experts', 'moe-plus-plus', 'top-p', 'recurrent']);

/**
 * A RouterSpec from JSON (config.json's `router` object: `{ "kind": ..., ...options }` with the option names of the
 * RouterSpec union). Unknown kinds, unknown or missing fields and wrong types throw with a one-line message.
 * `sigmoid-group-topk`'s biasName (a per-layer tensor name) may be omitted; the model file fills it in.
 */
export function parseRouterSpec(v: unknown): RouterSpec {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`router must be an object with a "kind", got ${JSON.stringify(v)}`);
  const o = v as Record<string, unknown>;
  const kind = o['kind'];
  if (typeof kind !== 'string' || !Object.hasOwn(FIELDS, kind)) {
    throw new Error(`unknown router kind ${JSON.stringify(kind)} (known: ${Object.keys(FIELDS).join(', ')})`);
  }
  const fields: Record<string, [FieldType, boolean]> = { ...FIELDS[kind] };
  if (WITH_BALANCE.has(kind)) for (const [f, t] of Object.entries(BALANCE)) fields[f] = [t, false];
  for (const key of Object.keys(o)) {
    if (key !== 'kind' && !Object.hasOwn(fields, key)) throw new Error(`router ${kind}: unknown option "${key}" (options: ${Object.keys(fields).join(', ') || 'none'})`);
  }
  for (const [key, [type, required]] of Object.entries(fields)) {
    const x = o[key];
    if (x === undefined || x === null) {
      if (required) throw new Error(`router ${kind}: missing option "${key}"`);
      continue;
    }
    const ok = type === 'number' ? typeof x === 'number' && Number.isFinite(x)
      : type === 'int' ? typeof x === 'number' && Number.isInteger(x) && x >= 0
        : type === 'boolean' ? typeof x === 'boolean'
          : Array.isArray(type) && (type.length ? type.includes(x as string) : typeof x === 'string');
    if (!ok) throw new Error(`router ${kind}: option "${key}" must be ${Array.isArray(type) ? (type.length ? `one of ${type.join(' | ')}` : 'a string') : type === 'int' ? 'a non-negative integer' : `a ${type}`}, got ${JSON.stringify(x)}`);
  }
  // Validated field by field against the union member's option table above.
  return { ...o } as unknown as RouterSpec;
}
