/**
 * `switchyard generate [model-dir] [prompt…]`: stream a continuation of a prompt (text via tokenizer.json, or token
 * ids). Without a model folder it uses the shipped default model.
 */
import { existsSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../models/load.js';
import { generate, generateAsync, type GenerateOptions } from '../infer/generate.js';
import type { CausalLM, LoadOptions } from '../models/causal-lm.js';
import type { ModelSpec } from '../models/spec.js';
import { pickDevice, type DeviceChoice } from './device.js';
import { loadDeviceModel } from '../models/load-device.js';
import { hasTokenizer, loadTokenizer } from '../io/tokenizer.js';
import { UserError } from '../util/errors.js';
import { progress } from './progress.js';
import { defaultModelDir, isModelDir } from '../models/default-model.js';
import { traceTokens } from '../analyze/routing-trace.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import { parseBytes, formatBytes } from '../infer/offload/budget.js';
import { POLICY_NAMES, type PolicyName } from '../infer/offload/policy.js';

export interface GenerateCommandOptions {
  prompt?: string;
  promptIds?: string;
  maxNewTokens: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  seed: number;
  stopAtEos: boolean;
  /** Write the routing trace of prompt + continuation (src/analyze/routing-trace.ts) to this JSON file. */
  trace?: string;
  /** Expert offloading: most bytes of routed-expert weights resident (e.g. "512M", "2G"). */
  memoryBudget?: string;
  /** Offload cache policy: lru (default), lfu, prefetch, none. */
  offloadPolicy?: string;
  /** cpu (default), webgpu, or auto (a hardware WebGPU adapter when there is one, else the CPU). */
  device?: DeviceChoice;
  /** With --device webgpu: store matrices as f16 on the GPU (and use tensor cores where the adapter has them). */
  f16?: boolean;
}

interface Runner {
  spec: ModelSpec;
  /** Where it ran (evaluated after the run: GPU memory then includes the activation pool). */
  device(): string;
  cpu?: CausalLM;
  run(prompt: number[], opts: GenerateOptions): Promise<number[][]>;
  close(): void;
}

/** Load the model on the chosen device: the CPU CausalLM (offloading, tracing) or the device graph on WebGPU. */
async function loadRunner(dir: string, o: GenerateCommandOptions, offload: LoadOptions['offload']): Promise<Runner> {
  let bar: ReturnType<typeof progress> | undefined;
  const onProgress = (d: number, t: number): void => { (bar ??= progress('loading', t, 'layers')).update(d); };
  const cpuOnly = offload !== undefined ? '--memory-budget (expert offloading)' : o.trace !== undefined ? '--trace' : undefined;
  const dev = await pickDevice(o.device ?? 'cpu', { cpuOnly, modelDir: dir });
  try {
    if (dev.kind === 'cpu') {
      const { model, spec } = loadModel(dir, { offload, onProgress });
      return { spec, device: () => 'cpu', cpu: model, run: async (p, g) => generate(model, [p], g), close: () => model.close() };
    }
    const ops = dev.ops(o.f16 ?? false);
    const { model, spec } = loadDeviceModel(dir, ops, { onProgress });
    const mib = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;
    return {
      spec,
      device: () => `webgpu (${ops.ctx.adapterName}${o.f16 ? ', f16 weights' : ''}${ops.ctx.tensorCoreDispatches > 0 ? ', tensor cores' : ''}; GPU memory: weights ${mib(ops.ctx.staticBytes)}, activation pool ${mib(ops.ctx.pooledBytes)})`,
      run: (p, g) => generateAsync(model, [p], g),
      close: () => ops.ctx.destroy(),
    };
  } finally {
    bar?.stop();
  }
}

export function parseIds(s: string): number[] {
  const parts = s.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
  if (parts.length === 0) throw new UserError('--prompt-ids is empty');
  return parts.map((p) => {
    if (!/^\d+$/.test(p)) throw new UserError(`--prompt-ids: "${p}" is not a non-negative integer`);
    return Number(p);
  });
}

/**
 * Positional arguments: an optional model folder first (a directory with config.json), then prompt words.
 * `--model` names the folder explicitly; otherwise the shipped default model is used.
 */
export function resolveGenerateArgs(args: readonly string[], o: GenerateCommandOptions & { model?: string }): { dir: string; prompt?: string } {
  let rest = [...args];
  let dir = o.model;
  if (dir === undefined && rest.length > 0 && isModelDir(rest[0]!)) dir = rest.shift();
  if (dir === undefined) {
    dir = defaultModelDir();
    if (!isModelDir(dir)) throw new UserError(`no model folder given and the default model is missing at ${dir}`);
  }
  const text = rest.length ? rest.join(' ') : undefined;
  if (text !== undefined && o.prompt !== undefined) throw new UserError('give the prompt either as an argument or with --prompt, not both');
  return { dir, prompt: text ?? o.prompt };
}

/**
 * Sampling settings: flags win; otherwise the model folder's generation_config.json (Hugging Face convention:
 * do_sample, temperature, top_p, top_k); otherwise greedy.
 */
export function samplingDefaults(dir: string, o: Pick<GenerateCommandOptions, 'temperature' | 'topP' | 'topK'>): { temperature: number; topP: number; topK: number } {
  let g: Record<string, unknown> = {};
  const p = join(dir, 'generation_config.json');
  if (existsSync(p)) {
    try {
      g = JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new UserError(`${p} is not valid JSON (${(e as Error).message.split('\n')[0]})`);
    }
  }
  const sample = g['do_sample'] === true;
  const numOr = (v: unknown, d: number): number => (typeof v === 'number' && Number.isFinite(v) ? v : d);
  return {
    temperature: o.temperature ?? (sample ? numOr(g['temperature'], 1) : 0),
    topP: o.topP ?? (sample ? numOr(g['top_p'], 1) : 1),
    topK: o.topK ?? (sample ? numOr(g['top_k'], 0) : 0),
  };
}

export async function generateCommand(dir: string, o: GenerateCommandOptions): Promise<void> {
  if (o.prompt === undefined && o.promptIds === undefined) throw new UserError('give a prompt: --prompt "text" or --prompt-ids 1,2,3');
  if (o.prompt !== undefined && o.promptIds !== undefined) throw new UserError('give either --prompt or --prompt-ids, not both');
  const tok = o.prompt !== undefined || hasTokenizer(dir) ? loadTokenizer(dir) : undefined;
  const prompt = o.promptIds !== undefined ? parseIds(o.promptIds) : tok!.encode(o.prompt!);
  if (prompt.length === 0) throw new UserError('the prompt encodes to no tokens');
  if (o.trace !== undefined && o.memoryBudget !== undefined) throw new UserError('--trace cannot be combined with --memory-budget (its extra forward pass would count in the offload statistics)');
  if (o.offloadPolicy !== undefined && o.memoryBudget === undefined) throw new UserError('--offload-policy needs --memory-budget');
  const policy = (o.offloadPolicy ?? 'lru') as PolicyName;
  if (!POLICY_NAMES.includes(policy)) throw new UserError(`--offload-policy must be one of ${POLICY_NAMES.join(', ')}, got "${o.offloadPolicy}"`);
  const offload = o.memoryBudget !== undefined ? { budgetBytes: parseBytes(o.memoryBudget), policy } : undefined;
  const runner = await loadRunner(dir, o, offload);
  const { spec } = runner;
  const bad = prompt.find((t) => t >= spec.vocabSize);
  if (bad !== undefined) throw new UserError(`prompt token id ${bad} is outside the vocabulary (0..${spec.vocabSize - 1})`);
  const generated: number[] = [];
  let printed = '';
  const out = (s: string): void => { writeSync(1, s); };
  if (tok) out(tok.decode(prompt));
  else out(prompt.join(' '));
  const t0 = performance.now();
  let first = 0;
  await runner.run(prompt, {
    maxNewTokens: o.maxNewTokens,
    ...samplingDefaults(dir, o),
    seed: o.seed,
    stopTokens: o.stopAtEos ? spec.eosTokenIds : [],
    onToken: (_b, t) => {
      if (!first) first = performance.now();
      generated.push(t);
      if (tok) {
        const text = tok.decode(generated);
        // Print only the stable new suffix (a partial UTF-8 sequence decodes to U+FFFD until complete).
        if (text.startsWith(printed) && !text.endsWith('\uFFFD')) { out(text.slice(printed.length)); printed = text; }
      } else out(` ${t}`);
    },
  });
  const t1 = performance.now();
  out('\n');
  const n = generated.length;
  const decodeRate = n > 1 ? ((n - 1) / ((t1 - first) / 1000)).toFixed(1) : 'n/a';
  process.stderr.write(`${n} tokens, prefill ${(first - t0).toFixed(0)} ms, decode ${decodeRate} tok/s on ${runner.device()}\n`);
  const model = runner.cpu;
  if (!model) { runner.close(); return; }
  if (o.trace !== undefined) {
    // One captured forward over prompt + continuation (windows of the model's context): the routing decoding made,
    // up to float rounding (cached and full attention sum in different orders).
    const tr = traceTokens(model, [...prompt, ...generated], { window: spec.maxPositions });
    writeFileAtomic(o.trace, JSON.stringify(tr) + '\n');
    process.stderr.write(`routing trace written to ${o.trace}\n`);
  }
  const c = model.offload;
  if (c) {
    const s = c.stats;
    process.stderr.write(`offload (${c.policy.name}, budget ${formatBytes(c.budgetBytes)} of ${formatBytes(c.totalExpertBytes())} expert weights): `
      + `hit rate ${(100 * s.hits / Math.max(1, s.accesses)).toFixed(1)} % (${s.hits}/${s.accesses}), ${s.loads} expert reads `
      + `(${formatBytes(s.bytesRead)}, ${s.readMs.toFixed(0)} ms)${s.prefetchLoads ? `, ${s.prefetchLoads} prefetched, ${s.prefetchHits} used` : ''}\n`);
    model.close();
  }
}
