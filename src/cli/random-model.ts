/** `switchyard random-model <dir>`: write a random-weight MoE checkpoint of a chosen shape. */
import { writeRandomCheckpoint, RANDOM_DEFAULTS, type RandomModelShape } from '../models/random-checkpoint.js';
import { UserError } from '../util/errors.js';
import { progress } from './progress.js';
import { fmtBytes } from './format.js';

export function randomModelCommand(dir: string, o: Record<string, string | undefined>): void {
  const int = (key: keyof RandomModelShape, flag: string): number => {
    const v = o[key];
    if (v === undefined) return RANDOM_DEFAULTS[key] as number;
    if (!/^\d+$/.test(v) || Number(v) < 1) throw new UserError(`--${flag} must be a positive integer, got "${v}"`);
    return Number(v);
  };
  const arch = (o['arch'] ?? RANDOM_DEFAULTS.arch) as RandomModelShape['arch'];
  if (!['mixtral', 'qwen3_moe', 'olmoe'].includes(arch)) throw new UserError(`--arch must be mixtral, qwen3_moe or olmoe, got "${arch}"`);
  const dtype = (o['dtype'] ?? 'f32').toUpperCase();
  if (dtype !== 'F32' && dtype !== 'BF16') throw new UserError(`--dtype must be f32 or bf16, got "${o['dtype']}"`);
  const shape: RandomModelShape = {
    arch, dtype,
    layers: int('layers', 'layers'), hidden: int('hidden', 'hidden'), ffn: int('ffn', 'ffn'), experts: int('experts', 'experts'),
    topK: int('topK', 'top-k'), heads: int('heads', 'heads'), kvHeads: int('kvHeads', 'kv-heads'), vocab: int('vocab', 'vocab'),
    seed: o['seed'] === undefined ? 1 : int('seed', 'seed'),
  };
  let bar: ReturnType<typeof progress> | undefined;
  let bytes = 0;
  writeRandomCheckpoint(dir, shape, (done, total) => {
    (bar ??= progress('writing', total, 'bytes')).update(done);
    bytes = total;
  });
  bar?.stop();
  process.stderr.write(`wrote ${dir}: random ${shape.arch}, ${shape.layers} layers, ${shape.experts} experts (top-${shape.topK}), ${fmtBytes(bytes)} of weights\n`);
}
