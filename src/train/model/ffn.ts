/**
 * Gated FFNs (SwiGLU and relatives): down(act(gate(x)) · up(x)). One function for routed experts, shared experts
 * and dense layers, as in the inference engine (moe/experts.ts `gatedFfn`).
 */
import type { DenseFfnSpec } from '../../models/spec.js';
import type { GatedActivation } from '../../backend/cpu/activations.js';
import type { Var } from '../autograd/var.js';
import { linear } from '../autograd/ops/linear.js';
import { gatedAct } from '../autograd/ops/elementwise.js';
import type { ParamStore } from './params.js';
import { UserError } from '../../util/errors.js';

/** Weights in the nn.Linear orientation: gate, up [F, D]; down [D, F]; optional biases. */
export interface FfnWeights {
  gate: Var;
  up: Var;
  down: Var;
  gateBias?: Var;
  upBias?: Var;
  downBias?: Var;
}

export interface FfnAct {
  act: GatedActivation;
  actOpts?: { alpha: number; limit: number };
}

/** x [n, D] → [n, D]. */
export function gatedFfn(x: Var, w: FfnWeights, a: FfnAct): Var {
  const g = linear(x, w.gate, w.gateBias);
  const u = linear(x, w.up, w.upBias);
  return linear(gatedAct(a.act, g, u, a.actOpts), w.down, w.downBias);
}

/**
 * The width F of an FFN whose gate projection is `gateName`: from the checkpoint tensor when loading, else the
 * width the caller gave for this kind of FFN.
 */
export function ffnWidth(store: ParamStore, gateName: string, fallback: number | undefined, what: string): number {
  const s = store.loadedShape(gateName);
  if (s) return s[0]!;
  if (fallback === undefined || !(fallback > 0)) throw new UserError(`the ${what} FFN width is unknown: pass it in the model's widths (${gateName})`);
  return fallback;
}

/** A dense gated FFN from a DenseFfnSpec (dense layers and shared experts). */
export class TrainableDenseFfn {
  readonly w: FfnWeights;
  constructor(readonly spec: DenseFfnSpec, D: number, F: number, store: ParamStore) {
    this.w = {
      gate: store.param(`${spec.gate}.weight`, [F, D], 'matrix'),
      up: store.param(`${spec.up}.weight`, [F, D], 'matrix'),
      down: store.param(`${spec.down}.weight`, [D, F], 'matrix'),
    };
  }
  forward(x: Var): Var {
    return gatedFfn(x, this.w, { act: this.spec.act });
  }
}
