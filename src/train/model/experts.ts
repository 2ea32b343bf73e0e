/**
 * A layer's routed experts as trainable parameters, in the checkpoint's own layout:
 * - per-expert: one Var per expert and projection (`${prefix}.${e}.${gate|up|down}.weight`);
 * - fused: `gateUp` [E, 2F, D] and `down` [E, D, F] are single Vars; each expert's matrices are row slices of them
 *   in the graph (views), so gradients land in the fused tensors;
 * - fused-transposed-interleaved (GPT-OSS): `gate_up_proj` [E, D, 2F] with gate/up interleaved in the last dim and
 *   `down_proj` [E, F, D], plus per-expert biases [E, 2F] / [E, D]; an expert computes x·W_e (+ b_e) and splits the
 *   even (gate) and odd (up) columns.
 */
import type { ExpertLayout } from '../../models/spec.js';
import type { Var } from '../autograd/var.js';
import { linear } from '../autograd/ops/linear.js';
import { gatedAct } from '../autograd/ops/elementwise.js';
import { reshape, sliceCols, sliceRows, transpose } from '../autograd/ops/shape.js';
import type { ParamStore } from './params.js';
import { gatedFfn, type FfnAct, type FfnWeights } from './ffn.js';
import { UserError } from '../../util/errors.js';

export class RoutedExperts {
  /** Per-expert layout: the weights of each expert. */
  private readonly perExpert?: FfnWeights[];
  private readonly gateUp?: Var;
  private readonly down?: Var;
  private readonly gateUpBias?: Var;
  private readonly downBias?: Var;
  readonly F: number;

  constructor(readonly layout: ExpertLayout, readonly E: number, readonly D: number, F: number | undefined, store: ParamStore) {
    if (layout.kind === 'per-expert') {
      const n = (e: number, p: string): string => `${layout.prefix}.${e}.${p}.weight`;
      const width = store.loadedShape(n(0, layout.gate))?.[0] ?? F;
      if (!width) throw new UserError(`the expert FFN width is unknown: pass it in the model's widths (${n(0, layout.gate)})`);
      this.F = width;
      this.perExpert = [];
      for (let e = 0; e < E; e++) {
        this.perExpert.push({
          gate: store.param(n(e, layout.gate), [width, D], 'matrix'),
          up: store.param(n(e, layout.up), [width, D], 'matrix'),
          down: store.param(n(e, layout.down), [D, width], 'matrix'),
        });
      }
      return;
    }
    const s = store.loadedShape(layout.gateUp);
    if (layout.kind === 'fused') {
      const width = s ? s[1]! / 2 : F;
      if (!width) throw new UserError(`the expert FFN width is unknown: pass it in the model's widths (${layout.gateUp})`);
      this.F = width;
      this.gateUp = store.param(layout.gateUp, [E, 2 * width, D], 'matrix');
      this.down = store.param(layout.down, [E, D, width], 'matrix');
      return;
    }
    const width = s ? s[2]! / 2 : F;
    if (!width) throw new UserError(`the expert FFN width is unknown: pass it in the model's widths (${layout.gateUp})`);
    this.F = width;
    // Stored transposed ([E, in, out]): the fan-in is the middle dim.
    this.gateUp = store.param(layout.gateUp, [E, D, 2 * width], { fanIn: D });
    this.down = store.param(layout.down, [E, width, D], { fanIn: width });
    if (layout.gateUpBias) this.gateUpBias = store.param(layout.gateUpBias, [E, 2 * width], 'zeros');
    if (layout.downBias) this.downBias = store.param(layout.downBias, [E, D], 'zeros');
  }

  /** Expert e on its rows x [n, D] → [n, D]. */
  run(e: number, x: Var, a: FfnAct): Var {
    const F = this.F;
    const D = this.D;
    if (this.perExpert) return gatedFfn(x, this.perExpert[e]!, a);
    if (this.layout.kind === 'fused') {
      const gu = reshape(sliceRows(this.gateUp!, e, e + 1), [2 * F, D]);
      return gatedFfn(x, {
        gate: sliceRows(gu, 0, F),
        up: sliceRows(gu, F, 2 * F),
        down: reshape(sliceRows(this.down!, e, e + 1), [D, F]),
      }, a);
    }
    const n = x.size / D;
    const w = transpose(reshape(sliceRows(this.gateUp!, e, e + 1), [D, 2 * F])); // [2F, D], rows interleaved g/u
    const b = this.gateUpBias ? reshape(sliceRows(this.gateUpBias, e, e + 1), [2 * F]) : undefined;
    const h = reshape(linear(x, w, b), [n * F, 2]);
    const g = reshape(sliceCols(h, 0, 1), [n, F]);
    const u = reshape(sliceCols(h, 1, 2), [n, F]);
    const wd = transpose(reshape(sliceRows(this.down!, e, e + 1), [F, D])); // [D, F]
    const bd = this.downBias ? reshape(sliceRows(this.downBias, e, e + 1), [D]) : undefined;
    return linear(gatedAct(a.act, g, u, a.actOpts), wd, bd);
  }
}
