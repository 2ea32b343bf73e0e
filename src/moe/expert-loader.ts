/**
 * Reads a layer's routed experts from either checkpoint layout into per-expert {gate, up, down} weights in the
 * nn.Linear orientation ([F, D], [F, D], [D, F]). Fused [E, 2F, D] tensors are sliced without copying; GPT-OSS's
 * [E, D, 2F] interleaved layout is transposed and de-interleaved once, at load.
 */
import type { WeightSource } from '../io/weight-source.js';
import type { ExpertLayout } from '../models/spec.js';
import { weightSlice, type Weight } from '../tensor/weight.js';
import { allocWeightData } from '../backend/cpu/weight-store.js';
import { UserError } from '../util/errors.js';
import { shapeStr } from '../tensor/tensor.js';
import type { ExpertWeights } from './experts.js';

export function loadExperts(layout: ExpertLayout, E: number, D: number, ck: WeightSource, keepBf16: boolean): ExpertWeights[] {
  const m = { keepBf16 };
  if (layout.kind === 'per-expert') {
    const out: ExpertWeights[] = [];
    for (let e = 0; e < E; e++) {
      const n = (p: string): string => `${layout.prefix}.${e}.${p}.weight`;
      const F = ck.info(n(layout.gate)).shape[0]!;
      out.push({
        gate: ck.weight(n(layout.gate), { ...m, shape: [F, D] }),
        up: ck.weight(n(layout.up), { ...m, shape: [F, D] }),
        down: ck.weight(n(layout.down), { ...m, shape: [D, F] }),
      });
    }
    return out;
  }
  const gu = ck.info(layout.gateUp);
  if (layout.kind === 'fused') {
    const F2 = gu.shape[1]!;
    if (gu.shape.length !== 3 || gu.shape[0] !== E || gu.shape[2] !== D || F2 % 2) {
      throw new UserError(`tensor ${layout.gateUp} has shape ${shapeStr(gu.shape)}, expected [${E}, 2F, ${D}]`);
    }
    const F = F2 / 2;
    const gateUp = ck.weight(layout.gateUp, m);
    const down = ck.weight(layout.down, { ...m, shape: [E, D, F] });
    const out: ExpertWeights[] = [];
    for (let e = 0; e < E; e++) {
      const ge = weightSlice(gateUp, e, e + 1);
      const both = { ...ge, shape: [F2, D] } as Weight;
      const de = weightSlice(down, e, e + 1);
      out.push({
        gate: { ...weightSlice(both, 0, F), name: `${layout.gateUp}[${e}].gate` },
        up: { ...weightSlice(both, F, F2), name: `${layout.gateUp}[${e}].up` },
        down: { ...de, shape: [D, F], name: `${layout.down}[${e}]` },
      });
    }
    return out;
  }
  // GPT-OSS: gate_up [E, D, 2F] (gate at even, up at odd columns), down [E, F, D].
  const F2 = gu.shape[2]!;
  if (gu.shape.length !== 3 || gu.shape[0] !== E || gu.shape[1] !== D || F2 % 2) {
    throw new UserError(`tensor ${layout.gateUp} has shape ${shapeStr(gu.shape)}, expected [${E}, ${D}, 2F]`);
  }
  const F = F2 / 2;
  const gateUp = ck.weight(layout.gateUp, m);
  const down = ck.weight(layout.down, { ...m, shape: [E, F, D] });
  const gub = layout.gateUpBias ? ck.weight(layout.gateUpBias, { shape: [E, F2] }).data as Float32Array : undefined;
  const db = layout.downBias ? ck.weight(layout.downBias, { shape: [E, D] }).data as Float32Array : undefined;
  const out: ExpertWeights[] = [];
  for (let e = 0; e < E; e++) {
    const g = allocWeightData(gateUp.dtype, F * D);
    const u = allocWeightData(gateUp.dtype, F * D);
    const dn = allocWeightData(down.dtype, D * F);
    const src = gateUp.data;
    for (let i = 0; i < D; i++) {
      const rb = (e * D + i) * F2;
      for (let f = 0; f < F; f++) {
        g[f * D + i] = src[rb + 2 * f]!;
        u[f * D + i] = src[rb + 2 * f + 1]!;
      }
    }
    for (let f = 0; f < F; f++) for (let i = 0; i < D; i++) dn[i * F + f] = down.data[(e * F + f) * D + i]!;
    const w: ExpertWeights = {
      gate: { name: `${layout.gateUp}[${e}].gate`, dtype: gateUp.dtype, shape: [F, D], data: g },
      up: { name: `${layout.gateUp}[${e}].up`, dtype: gateUp.dtype, shape: [F, D], data: u },
      down: { name: `${layout.down}[${e}]`, dtype: down.dtype, shape: [D, F], data: dn },
    };
    if (gub) {
      const gb = new Float32Array(F);
      const ub = new Float32Array(F);
      for (let f = 0; f < F; f++) { gb[f] = gub[e * F2 + 2 * f]!; ub[f] = gub[e * F2 + 2 * f + 1]!; }
      w.gateBias = { name: `${layout.gateUpBias}[${e}].gate`, dtype: 'f32', shape: [F], data: gb };
      w.upBias = { name: `${layout.gateUpBias}[${e}].up`, dtype: 'f32', shape: [F], data: ub };
    }
    if (db) w.downBias = { name: `${layout.downBias}[${e}]`, dtype: 'f32', shape: [D], data: db.slice(e * D, e * D + D) };
    out.push(w);
  }
  return out;
}
