/**
 * Reads one routed expert at a time straight from a model folder's safetensors files, in the same form the resident
 * loader (src/moe/expert-loader.ts) builds: per-expert layouts read their three tensors; fused [E, 2F, D] / [E, D, F]
 * layouts read only the expert's row range of each fused tensor (a positioned byte-range read, never the whole
 * tensor); GPT-OSS's [E, D, 2F] interleaved layout reads the expert's range and de-interleaves it. Bytes keep their
 * dtype (bf16 stays bf16 when the model keeps bf16; f16 is widened to f32 exactly as the resident loader does), so an
 * offloaded expert is bit-for-bit the resident one. The reader opens its own file handles (header parse only).
 *
 * `read(e, rd)` may hand the byte-range reads that land directly in final storage (F32, and BF16 kept as bf16) to
 * `rd` (the expert cache queues them on its reader thread); widened and transposed data is always read here.
 */
import { existsSync, readdirSync } from 'node:fs';
import { readJsonFile } from '../../io/read-file.js';
import { join } from 'node:path';
import { SafetensorsFile, type TensorInfo } from '../../io/safetensors.js';
import { FileSource } from '../../io/file-source.js';
import type { ExpertLayout } from '../../models/spec.js';
import type { ExpertWeights } from '../../moe/experts.js';
import type { Weight, WeightDType } from '../../tensor/weight.js';
import { allocWeightData } from '../../backend/cpu/weight-store.js';
import { allocWeightDataForOverwrite, freeWeightData } from '../../backend/cpu/wasm/index.js';
import { bf16ArrayToF32, f16ArrayToF32 } from '../../tensor/dtype.js';
import { UserError } from '../../util/errors.js';
import { shapeStr } from '../../tensor/tensor.js';

/** An expert read from disk: its weights plus the storage blocks that back them (freed on eviction). */
export interface LoadedExpert {
  weights: ExpertWeights;
  blocks: (Float32Array | Uint16Array)[];
  bytes: number;
}

/** Reads `dst.length` bytes of tensor `name` from byte `start` of it into `dst` (now or later). */
export type RangeReader = (name: string, start: number, dst: Uint8Array) => void;

/** The model folder's weight files, opened for positioned reads. */
export class TensorFiles {
  private readonly files: SafetensorsFile[] = [];
  private readonly where = new Map<string, SafetensorsFile>();

  constructor(readonly dir: string) {
    const index = join(dir, 'model.safetensors.index.json');
    let names: string[];
    if (existsSync(index)) {
      const wm = ((readJsonFile(index) ?? {}) as { weight_map?: Record<string, string> }).weight_map ?? {};
      names = [...new Set(Object.values(wm))].sort();
    } else {
      names = readdirSync(dir).filter((f) => /^model(-\d+-of-\d+)?\.safetensors$/.test(f)).sort();
    }
    try {
      for (const n of names) {
        const f = new SafetensorsFile(new FileSource(join(dir, n)));
        this.files.push(f);
        for (const t of f.tensors.keys()) this.where.set(t, f);
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  info(name: string): TensorInfo {
    const f = this.where.get(name);
    if (!f) throw new UserError(`checkpoint ${this.dir} is missing tensor ${name}`);
    return f.info(name);
  }

  /** Where byte `start` of tensor `name` lies: the file's path and absolute offset, for a read by another thread. */
  locate(name: string, start: number, length: number): { path: string; offset: number } {
    const f = this.where.get(name);
    if (!f) throw new UserError(`checkpoint ${this.dir} is missing tensor ${name}`);
    const t = f.info(name);
    if (start < 0 || start + length > t.byteLength) throw new Error(`byte range [${start}, ${start + length}) is outside ${name} (${t.byteLength} bytes)`);
    return { path: f.source.label, offset: t.offset + start };
  }

  /** Read `length` bytes of tensor `name` starting `start` bytes into it. */
  readRange(name: string, start: number, dst: Uint8Array): void {
    const f = this.where.get(name);
    if (!f) throw new UserError(`checkpoint ${this.dir} is missing tensor ${name}`);
    const t = f.info(name);
    if (start < 0 || start + dst.length > t.byteLength) throw new Error(`byte range [${start}, ${start + dst.length}) is outside ${name} (${t.byteLength} bytes)`);
    if (dst.length > 0) f.source.read(t.offset + start, dst.length, dst);
  }

  close(): void {
    for (const f of this.files) f.close();
  }
}

function bytesOf(a: Float32Array | Uint16Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * `count` elements of tensor `name` from element `first` on, as the resident loader would store them: F32 and (with
 * keepBf16) BF16 read straight into weight storage; F16, and BF16 without keepBf16, widened to f32.
 */
function readElements(files: TensorFiles, name: string, first: number, count: number, keepBf16: boolean, rd?: RangeReader): { dtype: WeightDType; data: Float32Array | Uint16Array } {
  const info = files.info(name);
  if (info.dtype === 'F32' || (info.dtype === 'BF16' && keepBf16)) {
    const dtype: WeightDType = info.dtype === 'F32' ? 'f32' : 'bf16';
    const data = allocWeightDataForOverwrite(dtype, count); // the read below fills all of it
    (rd ?? ((n, st, d) => files.readRange(n, st, d)))(name, first * (dtype === 'f32' ? 4 : 2), bytesOf(data));
    return { dtype, data };
  }
  if (info.dtype !== 'F16' && info.dtype !== 'BF16') throw new UserError(`tensor ${name} has dtype ${info.dtype}; offloaded experts must be F32, F16 or BF16`);
  const raw = new Uint16Array(count);
  files.readRange(name, first * 2, bytesOf(raw));
  const data = allocWeightData('f32', count) as Float32Array;
  if (info.dtype === 'F16') f16ArrayToF32(raw, data);
  else bf16ArrayToF32(raw, data);
  return { dtype: 'f32', data };
}

function weight(name: string, dtype: WeightDType, shape: number[], data: Float32Array | Uint16Array): Weight {
  return { name, dtype, shape, data };
}

/** One MoE layer's experts, readable one at a time. */
export class ExpertReader {
  /** Bytes of each expert's weights (what the cache accounts). */
  readonly expertBytes: number;
  private readonly F: number;
  private gub?: Float32Array;
  private db?: Float32Array;

  constructor(private readonly files: TensorFiles, readonly layout: ExpertLayout, readonly E: number, readonly D: number, private readonly keepBf16: boolean) {
    const esize = (name: string): number => {
      const i = files.info(name);
      return i.dtype === 'BF16' && keepBf16 ? 2 : 4; // bytes per stored element (f16 and unkept bf16 widen to f32)
    };
    if (layout.kind === 'per-expert') {
      const n = (e: number, p: string): string => `${layout.prefix}.${e}.${p}.weight`;
      this.F = files.info(n(0, layout.gate)).shape[0]!;
      let bytes = 0;
      for (const p of [layout.gate, layout.up, layout.down]) bytes += this.F * D * esize(n(0, p));
      this.expertBytes = bytes;
      return;
    }
    const gu = files.info(layout.gateUp);
    const dn = files.info(layout.down);
    if (layout.kind === 'fused') {
      const F2 = gu.shape[1]!;
      if (gu.shape.length !== 3 || gu.shape[0] !== E || gu.shape[2] !== D || F2 % 2) throw new UserError(`tensor ${layout.gateUp} has shape ${shapeStr(gu.shape)}, expected [${E}, 2F, ${D}]`);
      this.F = F2 / 2;
      if (dn.shape.length !== 3 || dn.shape[0] !== E || dn.shape[1] !== D || dn.shape[2] !== this.F) throw new UserError(`tensor ${layout.down} has shape ${shapeStr(dn.shape)}, expected [${E}, ${D}, ${this.F}]`);
    } else {
      const F2 = gu.shape[2]!;
      if (gu.shape.length !== 3 || gu.shape[0] !== E || gu.shape[1] !== D || F2 % 2) throw new UserError(`tensor ${layout.gateUp} has shape ${shapeStr(gu.shape)}, expected [${E}, ${D}, 2F]`);
      this.F = F2 / 2;
      if (dn.shape.length !== 3 || dn.shape[0] !== E || dn.shape[1] !== this.F || dn.shape[2] !== D) throw new UserError(`tensor ${layout.down} has shape ${shapeStr(dn.shape)}, expected [${E}, ${this.F}, ${D}]`);
      // Biases are small ([E, 2F], [E, D]): they stay resident, in f32, like the resident loader keeps them.
      if (layout.gateUpBias) this.gub = readElements(files, layout.gateUpBias, 0, E * F2, false).data as Float32Array;
      if (layout.downBias) this.db = readElements(files, layout.downBias, 0, E * D, false).data as Float32Array;
    }
    this.expertBytes = 2 * this.F * D * esize(layout.gateUp) + this.F * D * esize(layout.down);
  }

  /** Expert e's weights; direct byte-range reads go through `rd` when given (GPT-OSS's transposed layout: never). */
  read(e: number, rd?: RangeReader): LoadedExpert {
    if (!(e >= 0 && e < this.E)) throw new Error(`expert ${e} is outside 0..${this.E - 1}`);
    const { layout, D, F } = this;
    const kb = this.keepBf16;
    if (layout.kind === 'per-expert') {
      const n = (p: string): string => `${layout.prefix}.${e}.${p}.weight`;
      const get = (p: string, shape: number[]): { w: Weight; block: Float32Array | Uint16Array } => {
        const name = n(p);
        const info = this.files.info(name);
        if (info.shape.length !== 2 || info.shape[0] !== shape[0] || info.shape[1] !== shape[1]) throw new UserError(`tensor ${name} has shape ${shapeStr(info.shape)}, expected ${shapeStr(shape)}`);
        const r = readElements(this.files, name, 0, F * D, kb, rd);
        return { w: weight(name, r.dtype, shape, r.data), block: r.data };
      };
      const g = get(layout.gate, [F, D]);
      const u = get(layout.up, [F, D]);
      const d = get(layout.down, [D, F]);
      return { weights: { gate: g.w, up: u.w, down: d.w }, blocks: [g.block, u.block, d.block], bytes: this.expertBytes };
    }
    if (layout.kind === 'fused') {
      // gate_up row range [e·2F, (e+1)·2F) of [E·2F, D]; down rows [e·D, (e+1)·D) of [E·D, F].
      const gu = readElements(this.files, layout.gateUp, e * 2 * F * D, 2 * F * D, kb, rd);
      const dn = readElements(this.files, layout.down, e * D * F, D * F, kb, rd);
      return {
        weights: {
          gate: weight(`${layout.gateUp}[${e}].gate`, gu.dtype, [F, D], gu.data.subarray(0, F * D)),
          up: weight(`${layout.gateUp}[${e}].up`, gu.dtype, [F, D], gu.data.subarray(F * D, 2 * F * D)),
          down: weight(`${layout.down}[${e}]`, dn.dtype, [D, F], dn.data),
        },
        blocks: [gu.data, dn.data],
        bytes: this.expertBytes,
      };
    }
    // GPT-OSS: gate_up [E, D, 2F] (gate at even, up at odd columns), down [E, F, D]: read the expert's range, then
    // transpose and de-interleave exactly as the resident loader does.
    const F2 = 2 * F;
    const src = readElements(this.files, layout.gateUp, e * D * F2, D * F2, kb);
    const dsrc = readElements(this.files, layout.down, e * F * D, F * D, kb);
    const g = allocWeightData(src.dtype, F * D);
    const u = allocWeightData(src.dtype, F * D);
    const dn = allocWeightData(dsrc.dtype, D * F);
    for (let i = 0; i < D; i++) {
      const rb = i * F2;
      for (let f = 0; f < F; f++) {
        g[f * D + i] = src.data[rb + 2 * f]!;
        u[f * D + i] = src.data[rb + 2 * f + 1]!;
      }
    }
    for (let f = 0; f < F; f++) for (let i = 0; i < D; i++) dn[i * F + f] = dsrc.data[f * D + i]!;
    freeBlocks([src.data, dsrc.data]);
    const w: ExpertWeights = {
      gate: weight(`${layout.gateUp}[${e}].gate`, src.dtype, [F, D], g),
      up: weight(`${layout.gateUp}[${e}].up`, src.dtype, [F, D], u),
      down: weight(`${layout.down}[${e}]`, dsrc.dtype, [D, F], dn),
    };
    if (this.gub) {
      const gb = new Float32Array(F);
      const ub = new Float32Array(F);
      for (let f = 0; f < F; f++) { gb[f] = this.gub[e * F2 + 2 * f]!; ub[f] = this.gub[e * F2 + 2 * f + 1]!; }
      w.gateBias = weight(`${layout.gateUpBias}[${e}].gate`, 'f32', [F], gb);
      w.upBias = weight(`${layout.gateUpBias}[${e}].up`, 'f32', [F], ub);
    }
    if (this.db) w.downBias = weight(`${layout.downBias}[${e}]`, 'f32', [D], this.db.slice(e * D, e * D + D));
    return { weights: w, blocks: [g, u, dn], bytes: this.expertBytes };
  }
}

/** Give storage blocks back to the WASM heap (plain typed arrays are left to the garbage collector). */
export function freeBlocks(blocks: readonly (Float32Array | Uint16Array)[]): void {
  for (const b of blocks) freeWeightData(b);
}
