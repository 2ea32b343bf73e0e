/**
 * `switchyard train`: train a small MoE language model (or only its routers) and write a Hugging Face folder
 * (config.json, model.safetensors, tokenizer.json, tokenizer_config.json) plus training_log.json and a resumable
 * checkpoint/.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Checkpoint, readConfig, type Config } from '../io/checkpoint.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import { specFor } from '../models/registry.js';
import { TrainableLM } from '../train/model/trainable-lm.js';
import { exportHuggingFace } from '../train/model/export.js';
import { DEFAULT_HYPER, Trainer, checkpointPath, type TrainHyper, type TrainHistory } from '../train/trainer.js';
import { DEFAULT_SHAPE, ROUTER_PRESETS, modelConfig, routerPreset, type ModelShape } from '../train/presets.js';
import { prepareData, type PreparedData } from '../train/prepare-data.js';
import { UserError } from '../util/errors.js';
import { progress } from './progress.js';

export interface TrainCommandOptions {
  out: string;
  config?: string;
  router?: string;
  text?: string[];
  tokenizer?: string;
  vocab?: string;
  init?: string;
  trainOnly?: string;
  resume?: boolean;
  dtype?: string;
  [flag: string]: unknown;
}

const SHAPE_FLAGS: Record<string, keyof ModelShape> = {
  layers: 'layers', hidden: 'hidden', heads: 'heads', kvHeads: 'kvHeads', headDim: 'headDim', expertFfn: 'expertFfn',
  experts: 'experts', topK: 'topK', sharedExperts: 'sharedExperts', maxPositions: 'maxPositions',
};
const HYPER_FLAGS: Record<string, keyof TrainHyper> = {
  steps: 'steps', batch: 'batchSize', seq: 'seqLen', lr: 'lr', minLr: 'minLr', warmup: 'warmup', weightDecay: 'weightDecay',
  clip: 'clip', accum: 'accum', seed: 'seed', evalEvery: 'evalEvery', evalBatches: 'evalBatches', checkpointEvery: 'checkpointEvery',
};

function num(v: unknown, flag: string, integer: boolean): number {
  const n = Number(v);
  if (typeof v !== 'string' && typeof v !== 'number') throw new UserError(`--${flag}: expected a number`);
  if (!Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) throw new UserError(`--${flag} must be a non-negative ${integer ? 'integer' : 'number'}, got "${String(v)}"`);
  return n;
}

const kebab = (s: string): string => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** Settings from --config FILE (JSON: {model: {...shape}, train: {...hyper}, router}) overridden by flags. */
export function resolveSettings(o: TrainCommandOptions): { shape: ModelShape; hyper: TrainHyper; router: string } {
  let file: { model?: Partial<ModelShape>; train?: Partial<TrainHyper>; router?: string } = {};
  if (o.config) {
    if (!existsSync(o.config)) throw new UserError(`--config ${o.config} does not exist`);
    try {
      file = JSON.parse(readFileSync(o.config, 'utf8')) as typeof file;
    } catch (e) {
      throw new UserError(`--config ${o.config}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  const shape: ModelShape = { ...DEFAULT_SHAPE, ...file.model };
  const hyper: TrainHyper = { ...DEFAULT_HYPER, ...file.train };
  for (const [flag, key] of Object.entries(SHAPE_FLAGS)) if (o[flag] !== undefined) shape[key] = num(o[flag], kebab(flag), true) as never;
  for (const [flag, key] of Object.entries(HYPER_FLAGS)) {
    if (o[flag] !== undefined) (hyper as unknown as Record<string, number>)[key] = num(o[flag], kebab(flag), !['lr', 'minLr', 'weightDecay', 'clip'].includes(flag));
  }
  if (o['untied']) shape.tieEmbeddings = false;
  if (o.trainOnly !== undefined) {
    if (o.trainOnly !== 'router' && o.trainOnly !== 'all') throw new UserError(`--train-only must be "router" or "all", got "${o.trainOnly}"`);
    hyper.trainOnly = o.trainOnly;
  }
  for (const k of ['steps', 'batchSize', 'seqLen', 'accum', 'evalEvery'] as const) if (hyper[k] < 1) throw new UserError(`${k} must be at least 1`);
  for (const k of ['layers', 'hidden', 'heads', 'kvHeads', 'headDim', 'expertFfn', 'experts', 'topK'] as const) if (shape[k] < 1) throw new UserError(`${k} must be at least 1`);
  if (shape.heads % shape.kvHeads) throw new UserError(`--heads ${shape.heads} is not a multiple of --kv-heads ${shape.kvHeads}`);
  if (shape.topK > shape.experts) throw new UserError(`--top-k ${shape.topK} exceeds --experts ${shape.experts}`);
  if (hyper.seqLen > shape.maxPositions) throw new UserError(`--seq ${hyper.seqLen} exceeds --max-positions ${shape.maxPositions}`);
  return { shape, hyper, router: o.router ?? file.router ?? 'softmax-topk' };
}

export interface TrainRunResult {
  history: TrainHistory;
  config: Config;
  finalValLoss: number;
  tokensPerSec: number;
  seconds: number;
}

/** Train with resolved settings into `out` (shared by `train` and `compare-routers`). */
export function runTraining(out: string, settings: { shape: ModelShape; hyper: TrainHyper; router: string }, data: PreparedData,
  o: { init?: string; resume?: boolean; dtype?: 'f32' | 'bf16'; label?: string; quiet?: boolean } = {}): TrainRunResult {
  const { shape, hyper } = settings;
  mkdirSync(out, { recursive: true });
  let config: Config;
  let initFrom: TrainableLM | undefined;
  if (o.init) {
    config = readConfig(o.init);
    const ck = new Checkpoint(o.init);
    try {
      const spec = specFor(config, new Set(ck.names()));
      if (spec.vocabSize !== data.vocabSize) throw new UserError(`--init model has a vocabulary of ${spec.vocabSize}, the tokenizer ${data.vocabSize}: pass --tokenizer ${o.init}`);
      initFrom = TrainableLM.fromCheckpoint(spec, ck);
    } finally {
      ck.close();
    }
  } else {
    config = modelConfig(shape, routerPreset(settings.router, shape), data.vocabSize, data.eosId);
  }
  const label = o.label ?? 'train';
  const bar = o.quiet ? undefined : progress(label, hyper.steps, 'steps');
  let lastVal = NaN;
  const t0 = performance.now();
  let tokens = 0;
  const trainer = new Trainer(config, hyper, data.tokens, {
    checkpointDir: checkpointPath(out), resume: o.resume, initFrom,
    onStep: (m) => {
      tokens += hyper.batchSize * hyper.seqLen * hyper.accum;
      bar?.update(m.step, `loss ${m.loss.toFixed(3)} val ${Number.isNaN(lastVal) ? '-' : lastVal.toFixed(3)} | ${Math.round(m.tokensPerSec)} tok/s | imbalance ${m.imbalance.toFixed(2)} | experts/tok ${m.activeExperts.toFixed(2)}`);
    },
    onEval: (e) => { lastVal = e.valLoss; },
  });
  const history = trainer.run();
  bar?.stop();
  const seconds = (performance.now() - t0) / 1000;
  exportHuggingFace(trainer.lm, config, out, { dtype: o.dtype ?? 'f32', verify: config['model_type'] !== 'switchyard_moe' });
  writeFileAtomic(join(out, 'tokenizer.json'), JSON.stringify(data.tokenizerJson));
  writeFileAtomic(join(out, 'tokenizer_config.json'), JSON.stringify(data.tokenizerConfig, null, 2) + '\n');
  // Small models loop under greedy decoding: ship sampling defaults (flags override them).
  writeFileAtomic(join(out, 'generation_config.json'), JSON.stringify({
    bos_token_id: data.eosId, eos_token_id: data.eosId, do_sample: true, temperature: 0.8, top_p: 0.95,
  }, null, 2) + '\n');
  const finalValLoss = history.eval.at(-1)?.valLoss ?? NaN;
  const tokensPerSec = tokens / seconds;
  writeFileAtomic(join(out, 'training_log.json'), JSON.stringify({
    router: settings.router, model: shape, train: hyper, data: data.source, finalValLoss, tokensPerSec, seconds, history,
  }, null, 1) + '\n');
  return { history, config, finalValLoss, tokensPerSec, seconds };
}

export function trainCommand(o: TrainCommandOptions): void {
  const settings = resolveSettings(o);
  if (o.router && !(o.router in ROUTER_PRESETS)) routerPreset(o.router, settings.shape);
  if (o.trainOnly === 'router' && !o.init) throw new UserError('--train-only router needs --init <model-dir> (the model whose routers to fine-tune)');
  const dtype = o.dtype === undefined ? 'f32' : o.dtype === 'bf16' || o.dtype === 'f32' ? o.dtype : (() => { throw new UserError(`--dtype must be f32 or bf16, got "${o.dtype}"`); })();
  mkdirSync(checkpointPath(o.out), { recursive: true });
  const data = prepareData({
    textFiles: o.text, tokenizerDir: o.tokenizer ?? o.init, vocabSize: o.vocab === undefined ? undefined : num(o.vocab, 'vocab', true),
    cachePath: join(checkpointPath(o.out), 'tokens.safetensors'),
  });
  process.stderr.write(`data: ${data.source}: ${data.tokens.train.length} training / ${data.tokens.validation.length} validation tokens, vocabulary ${data.vocabSize}\n`);
  const r = runTraining(o.out, settings, data, { init: o.init, resume: o.resume, dtype });
  process.stderr.write(`done in ${r.seconds.toFixed(0)} s (${Math.round(r.tokensPerSec)} tokens/s): validation loss ${r.finalValLoss.toFixed(4)}; model written to ${o.out}\n`);
}
