/**
 * The parameter store of a trainable model: tensor name → Var (a trainable leaf), named exactly as the Hugging Face
 * checkpoint names the tensor. Parameters come either from a seeded random initialisation or from every tensor of a
 * Checkpoint (read as float32, or float64 for gradient checks). Modules ask for their parameters by name and shape;
 * routers create their own parameters and hand them to `adopt`, which fills them from the checkpoint when it has them.
 */
import type { Checkpoint } from '../../io/checkpoint.js';
import { param, type FArray, type Var } from '../autograd/var.js';
import { weightToF32 } from '../../tensor/weight.js';
import { UserError } from '../../util/errors.js';
import { normalSampler, seededUniform } from './rng.js';

export type Precision = 'f32' | 'f64';

/**
 * How a parameter starts when it is not loaded:
 * - 'ones' (norm scales), 'zeros' (biases, sinks);
 * - 'matrix': a weight [..., fan_in] (nn.Linear layout: fan_in = last dim);
 * - 'embedding': an embedding table;
 * - { fanIn }: a weight stored in another orientation, with its fan-in given.
 */
export type ParamInit = 'ones' | 'zeros' | 'matrix' | 'embedding' | { fanIn: number };

export interface InitOptions {
  /**
   * 'normal' (default): every matrix ~ N(0, std²), the transformers `initializer_range` convention (std 0.02);
   * 'fan-in': matrices ~ N(0, 1/fan_in) (unit-variance activations), embeddings ~ N(0, 1).
   */
  scheme?: 'normal' | 'fan-in';
  /** Standard deviation of the 'normal' scheme (default 0.02). */
  std?: number;
}

export interface StoredTensor {
  data: FArray;
  shape: readonly number[];
}

const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);
const shapeStr = (s: readonly number[]): string => `[${s.join(', ')}]`;

export class ParamStore {
  private readonly vars = new Map<string, Var>();
  /** Checkpoint tensors not yet claimed by a module (checkpoint mode only). */
  private readonly loaded = new Map<string, StoredTensor>();
  private readonly fromCheckpoint: boolean;
  /** Seeded uniform [0, 1) stream (also handed to routers for their own initialisation). */
  readonly uniform: () => number;
  private readonly normal: () => number;
  readonly init: Required<InitOptions>;

  constructor(readonly precision: Precision, seed = 0, init: InitOptions = {}, loaded?: Map<string, StoredTensor>) {
    this.uniform = seededUniform(seed);
    this.normal = normalSampler(this.uniform);
    this.init = { scheme: init.scheme ?? 'normal', std: init.std ?? 0.02 };
    this.fromCheckpoint = loaded !== undefined;
    if (loaded) for (const [k, v] of loaded) this.loaded.set(k, v);
  }

  /** Every tensor of `ck` as a parameter candidate (f32 or f64 copies: the store owns its buffers). */
  static fromCheckpoint(ck: Checkpoint, precision: Precision): ParamStore {
    const loaded = new Map<string, StoredTensor>();
    for (const name of ck.names().sort()) {
      const w = ck.weight(name);
      const f32 = weightToF32(w);
      const data = precision === 'f64' ? Float64Array.from(f32) : Float32Array.from(f32);
      loaded.set(name, { data, shape: w.shape.slice() });
    }
    return new ParamStore(precision, 0, {}, loaded);
  }

  /** Standard deviation of a fresh matrix of fan-in `fanIn`. */
  matrixStd(fanIn: number): number {
    return this.init.scheme === 'fan-in' ? 1 / Math.sqrt(fanIn) : this.init.std;
  }

  private fresh(shape: readonly number[], init: ParamInit): FArray {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = this.precision === 'f64' ? new Float64Array(n) : new Float32Array(n);
    if (init === 'ones') data.fill(1);
    else if (init !== 'zeros') {
      const std = init === 'embedding'
        ? (this.init.scheme === 'fan-in' ? 1 : this.init.std)
        : this.matrixStd(init === 'matrix' ? shape[shape.length - 1] ?? 1 : init.fanIn);
      for (let i = 0; i < n; i++) data[i] = this.normal() * std;
    }
    return data;
  }

  /** The parameter `name` of `shape`: already made, loaded from the checkpoint, or freshly initialised. */
  param(name: string, shape: readonly number[], init: ParamInit): Var {
    const have = this.vars.get(name);
    if (have) {
      if (!sameShape(have.shape, shape)) throw new UserError(`parameter ${name} is used with shape ${shapeStr(shape)} but has ${shapeStr(have.shape)}`);
      return have;
    }
    const t = this.loaded.get(name);
    let v: Var;
    if (t) {
      if (!sameShape(t.shape, shape)) throw new UserError(`tensor ${name} has shape ${shapeStr(t.shape)}, expected ${shapeStr(shape)}`);
      this.loaded.delete(name);
      v = param(t.data, shape, name);
    } else {
      if (this.fromCheckpoint) throw new UserError(`the checkpoint has no tensor ${name}`);
      v = param(this.fresh(shape, init), shape, name);
    }
    this.vars.set(name, v);
    return v;
  }

  /**
   * Register a parameter a router made itself. When the checkpoint has a tensor of that name, its values are
   * copied into the Var (which stays the one in the graph).
   */
  adopt(v: Var): Var {
    if (!v.name) throw new Error('ParamStore.adopt: parameters must be named');
    const have = this.vars.get(v.name);
    if (have === v) return v;
    if (have) throw new Error(`parameter ${v.name} is defined twice`);
    const t = this.loaded.get(v.name);
    if (t) {
      if (!sameShape(t.shape, v.shape)) throw new UserError(`tensor ${v.name} has shape ${shapeStr(t.shape)}, expected ${shapeStr(v.shape)}`);
      v.data.set(t.data);
      this.loaded.delete(v.name);
    } else if (this.fromCheckpoint) {
      throw new UserError(`the checkpoint has no tensor ${v.name}`);
    }
    if (v.isF64 !== (this.precision === 'f64')) throw new Error(`parameter ${v.name} is ${v.isF64 ? 'f64' : 'f32'} in a ${this.precision} model`);
    this.vars.set(v.name, v);
    return v;
  }

  /** Take a checkpoint tensor that is not a parameter (router state such as a correction bias). */
  takeState(name: string): StoredTensor | undefined {
    const t = this.loaded.get(name);
    if (t) this.loaded.delete(name);
    return t;
  }

  /** Shape of a not-yet-claimed checkpoint tensor (how modules learn widths the spec does not carry). */
  loadedShape(name: string): readonly number[] | undefined {
    return this.loaded.get(name)?.shape;
  }

  get(name: string): Var {
    const v = this.vars.get(name);
    if (!v) throw new Error(`no parameter ${name}`);
    return v;
  }

  has(name: string): boolean {
    return this.vars.has(name);
  }

  /** All parameters, in the order they were created. */
  entries(): [string, Var][] {
    return [...this.vars.entries()];
  }

  /** Checkpoint tensors no module asked for. */
  unclaimed(): string[] {
    return [...this.loaded.keys()];
  }
}
