/**
 * Training checkpoints: a folder holding
 *
 *   model.safetensors      every parameter under its `Var.name` (F32 or F64, as the parameter is), so the file is also
 *                          an ordinary weights file
 *   optimizer.safetensors  AdamW moments: `exp_avg.<name>` (m) and `exp_avg_sq.<name>` (v), same dtype as the param
 *   trainer_state.json     step, data-sampler state, caller's extra JSON, optimizer scalars (hyper-parameters,
 *                          per-parameter step counts) and the byte size + SHA-256 of both safetensors files
 *
 * Save order (so a crash never leaves something that loads as a checkpoint but is not one):
 *   1. all three files are written to temporary names in the folder and fsynced;
 *   2. renamed into place: optimizer.safetensors, then model.safetensors, then trainer_state.json — the last rename
 *      is the commit;
 *   3. the folder is fsynced.
 * A crash before step 2 leaves at most stray `*.tmp` files (the previous checkpoint in the folder, if any, is
 * untouched). A crash inside step 2 leaves new safetensors files next to the old trainer_state.json, whose
 * checksums no longer match: `readCheckpoint` refuses such a folder. Writing each checkpoint to its own folder
 * (e.g. step-000100/) keeps the previous one intact whatever happens.
 *
 * Loading restores exactly: raw bytes are copied, so float32 stays float32 and every bit (NaN payloads included)
 * comes back. `sampler` and `extra` go through JSON (so non-finite numbers become null).
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { type FArray, type Var } from './autograd/var.js';
import { type AdamW, type AdamWHyper, type AdamWState } from './optim/adamw.js';
import { SafetensorsFile, encodeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import { BufferSource } from '../io/byte-source.js';
import { UserError } from '../util/errors.js';

export const MODEL_FILE = 'model.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const TRAINER_STATE_FILE = 'trainer_state.json';
const FORMAT = 'switchyard-trainer-state';
const VERSION = 1;

export interface SaveCheckpointInput {
  params: readonly Var[];
  /** `optimizer.state()`, or null/undefined for none (an empty optimizer.safetensors is written). */
  optimizer?: AdamWState | null;
  /** Optimizer steps done so far. */
  step: number;
  /** Data sampler / RNG state (any JSON value), e.g. `BatchSampler.state()`. */
  sampler?: unknown;
  /** Anything else the trainer wants back (config, loss history, …): JSON. */
  extra?: Record<string, unknown>;
}

export interface TrainerStateJson {
  format: typeof FORMAT;
  version: number;
  step: number;
  sampler: unknown;
  extra: Record<string, unknown>;
  optimizer: { hyper: AdamWHyper; stepCount: number; steps: Record<string, number> } | null;
  files: Record<string, { bytes: number; sha256: string }>;
}

export interface CheckpointTensor {
  data: FArray;
  shape: number[];
}

export interface LoadedCheckpoint {
  dir: string;
  state: TrainerStateJson;
  /** model.safetensors, by parameter name. */
  params: Map<string, CheckpointTensor>;
  optimizer: AdamWState | null;
}

function dtypeOf(a: FArray): 'F32' | 'F64' {
  return a instanceof Float64Array ? 'F64' : 'F32';
}

function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

function writeSynced(path: string, data: Uint8Array): void {
  const fd = openSync(path, 'w');
  try {
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Not supported everywhere (e.g. Windows); the renames are still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function checkNames(params: readonly Var[]): void {
  const seen = new Set<string>();
  for (const p of params) {
    if (!p.name) throw new Error('saveCheckpoint: every parameter needs a name');
    if (seen.has(p.name)) throw new Error(`saveCheckpoint: two parameters are named ${p.name}`);
    seen.add(p.name);
  }
}

/** Write a checkpoint into `dir` (created if missing) as described in the module comment. */
export function saveCheckpoint(dir: string, input: SaveCheckpointInput): void {
  const { params, step } = input;
  if (!Number.isSafeInteger(step) || step < 0) throw new RangeError(`checkpoint step must be a non-negative integer, got ${step}`);
  checkNames(params);
  const modelTensors: Record<string, TensorToWrite> = {};
  for (const p of params) modelTensors[p.name] = { dtype: dtypeOf(p.data), shape: [...p.shape], data: p.data };
  const model = encodeSafetensors(modelTensors, { format: 'pt', step: String(step) });

  const optTensors: Record<string, TensorToWrite> = {};
  let optimizer: TrainerStateJson['optimizer'] = null;
  if (input.optimizer) {
    const shapes = new Map(params.map((p) => [p.name, p.shape]));
    const steps: Record<string, number> = {};
    for (const [name, e] of Object.entries(input.optimizer.params)) {
      const shape = shapes.get(name);
      if (!shape) throw new Error(`saveCheckpoint: optimizer state for ${name}, which is not among the parameters`);
      optTensors[`exp_avg.${name}`] = { dtype: dtypeOf(e.m), shape: [...shape], data: e.m };
      optTensors[`exp_avg_sq.${name}`] = { dtype: dtypeOf(e.v), shape: [...shape], data: e.v };
      steps[name] = e.step;
    }
    optimizer = { hyper: { ...input.optimizer.hyper }, stepCount: input.optimizer.stepCount, steps };
  }
  const opt = encodeSafetensors(optTensors, { format: 'switchyard-adamw' });

  const state: TrainerStateJson = {
    format: FORMAT,
    version: VERSION,
    step,
    sampler: input.sampler ?? null,
    extra: input.extra ?? {},
    optimizer,
    files: {
      [MODEL_FILE]: { bytes: model.length, sha256: sha256(model) },
      [OPTIMIZER_FILE]: { bytes: opt.length, sha256: sha256(opt) },
    },
  };
  const stateBytes = new TextEncoder().encode(`${JSON.stringify(state, null, 2)}\n`);

  mkdirSync(dir, { recursive: true });
  const tag = `${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  // Rename order matters: trainer_state.json last.
  const files: [string, Uint8Array][] = [[OPTIMIZER_FILE, opt], [MODEL_FILE, model], [TRAINER_STATE_FILE, stateBytes]];
  const temps = files.map(([name]) => join(dir, `.${name}.${tag}`));
  try {
    files.forEach(([, bytes], i) => writeSynced(temps[i]!, bytes));
    files.forEach(([name], i) => renameSync(temps[i]!, join(dir, name)));
  } catch (e) {
    for (const t of temps) rmSync(t, { force: true });
    throw e;
  }
  fsyncDir(dir);
}

function readVerified(dir: string, name: string, expect: { bytes: number; sha256: string } | undefined): Uint8Array {
  const path = join(dir, name);
  if (!expect) throw new UserError(`${join(dir, TRAINER_STATE_FILE)} does not list ${name}`);
  if (!existsSync(path)) throw new UserError(`checkpoint ${dir} is incomplete: ${name} is missing`);
  const bytes = readFileSync(path);
  if (bytes.length !== expect.bytes || sha256(bytes) !== expect.sha256) {
    throw new UserError(`checkpoint ${dir} is inconsistent: ${name} does not match ${TRAINER_STATE_FILE} (a save was interrupted?)`);
  }
  return bytes;
}

function tensorOf(f: SafetensorsFile, name: string): CheckpointTensor {
  const info = f.info(name);
  const b = f.bytes(name); // a fresh 8-byte aligned copy
  let data: FArray;
  if (info.dtype === 'F32') data = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  else if (info.dtype === 'F64') data = new Float64Array(b.buffer, b.byteOffset, b.byteLength / 8);
  else throw new UserError(`${f.label}: ${name} is ${info.dtype}; checkpoints hold F32 or F64 tensors`);
  return { data, shape: [...info.shape] };
}

function parseState(dir: string): TrainerStateJson {
  const path = join(dir, TRAINER_STATE_FILE);
  if (!existsSync(path)) throw new UserError(`${dir} is not a complete checkpoint: ${TRAINER_STATE_FILE} is missing`);
  let s: unknown;
  try {
    s = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UserError(`${path} is not valid JSON (${(e as Error).message})`);
  }
  const st = s as Partial<TrainerStateJson> | null;
  if (!st || typeof st !== 'object' || st.format !== FORMAT) throw new UserError(`${path} is not a Switchyard trainer state`);
  if (st.version !== VERSION) throw new UserError(`${path} has version ${String(st.version)}; this build reads version ${VERSION}`);
  if (!Number.isSafeInteger(st.step) || st.step! < 0 || typeof st.files !== 'object' || st.files === null) throw new UserError(`${path} is malformed`);
  return st as TrainerStateJson;
}

/** Read and verify a checkpoint folder without touching any model. */
export function readCheckpoint(dir: string): LoadedCheckpoint {
  const state = parseState(dir);
  const modelBytes = readVerified(dir, MODEL_FILE, state.files[MODEL_FILE]);
  const optBytes = readVerified(dir, OPTIMIZER_FILE, state.files[OPTIMIZER_FILE]);
  const mf = new SafetensorsFile(new BufferSource(modelBytes, join(dir, MODEL_FILE)));
  const params = new Map<string, CheckpointTensor>();
  for (const name of mf.tensors.keys()) params.set(name, tensorOf(mf, name));
  let optimizer: AdamWState | null = null;
  if (state.optimizer) {
    const of = new SafetensorsFile(new BufferSource(optBytes, join(dir, OPTIMIZER_FILE)));
    const entries: AdamWState['params'] = {};
    for (const [name, step] of Object.entries(state.optimizer.steps)) {
      const m = tensorOf(of, `exp_avg.${name}`);
      const v = tensorOf(of, `exp_avg_sq.${name}`);
      entries[name] = { step, m: m.data, v: v.data };
    }
    optimizer = { hyper: { ...state.optimizer.hyper }, stepCount: state.optimizer.stepCount, params: entries };
  }
  return { dir, state, params, optimizer };
}

export interface RestoreTarget {
  params: readonly Var[];
  optimizer?: AdamW;
  /** Allow tensors in the checkpoint that are not among `params` (default false). */
  allowUnused?: boolean;
}

/**
 * Load a checkpoint into existing parameters (values copied into `p.data`; shapes and precisions must match) and,
 * when given, an optimizer. Returns what the trainer needs to continue.
 */
export function loadCheckpoint(dir: string, target: RestoreTarget): { step: number; sampler: unknown; extra: Record<string, unknown> } {
  const ck = readCheckpoint(dir);
  const names = new Set<string>();
  for (const p of target.params) {
    const t = ck.params.get(p.name);
    if (!t) throw new UserError(`checkpoint ${dir} has no tensor ${p.name}`);
    if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) throw new UserError(`checkpoint ${dir}: ${p.name} has shape [${t.shape.join(', ')}], the model [${p.shape.join(', ')}]`);
    if (dtypeOf(t.data) !== dtypeOf(p.data)) throw new UserError(`checkpoint ${dir}: ${p.name} is ${dtypeOf(t.data)}, the model's parameter ${dtypeOf(p.data)}`);
    names.add(p.name);
  }
  if (!target.allowUnused) {
    const unused = [...ck.params.keys()].filter((n) => !names.has(n));
    if (unused.length) throw new UserError(`checkpoint ${dir} has tensors the model does not: ${unused.slice(0, 5).join(', ')}${unused.length > 5 ? ', …' : ''}`);
  }
  if (target.optimizer) {
    if (!ck.optimizer) throw new UserError(`checkpoint ${dir} has no optimizer state`);
    target.optimizer.loadState(ck.optimizer);
  }
  for (const p of target.params) p.data.set(ck.params.get(p.name)!.data);
  return { step: ck.state.step, sampler: ck.state.sampler, extra: ck.state.extra };
}

/** True when `dir` holds a complete, consistent checkpoint. */
export function isCompleteCheckpoint(dir: string): boolean {
  try {
    const state = parseState(dir);
    readVerified(dir, MODEL_FILE, state.files[MODEL_FILE]);
    readVerified(dir, OPTIMIZER_FILE, state.files[OPTIMIZER_FILE]);
    return true;
  } catch {
    return false;
  }
}
