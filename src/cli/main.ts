#!/usr/bin/env node
/**
 * The `switchyard` command line. User mistakes (bad paths, bad checkpoints, bad flags) print one line and exit 2;
 * `--verbose` adds the stack trace.
 */
import { Command, CommanderError, Option } from 'commander';
import { UserError } from '../util/errors.js';
import { initCpuBackend } from '../backend/cpu/init.js';
import { inspectCommand } from './inspect.js';
import { generateCommand, resolveGenerateArgs } from './generate.js';
import { randomModelCommand } from './random-model.js';
import { supportedModelTypes } from '../models/registry.js';
import { trainCommand, type TrainCommandOptions } from './train.js';
import { compareRoutersCommand, DEFAULT_COMPARISON } from './compare-routers.js';
import { ROUTER_PRESETS } from '../train/presets.js';
import { analyzeCommand, type AnalyzeOptions } from './analyze.js';
import { DEVICE_CHOICES, requireCpu, type DeviceChoice } from './device.js';

const verbose = process.argv.includes('--verbose');

function num(name: string, min: number, max = Infinity, integer = false) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      throw new UserError(`--${name} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got "${v}"`);
    }
    return n;
  };
}

const program = new Command()
  .name('switchyard')
  .description(`Mixture-of-Experts engine. Supported model types: ${supportedModelTypes().join(', ')}`)
  .option('--verbose', 'print stack traces on errors')
  .addOption(new Option('--threads <n>', 'CPU worker threads (1 = main thread only)').argParser(num('threads', 1, 64, true)))
  .option('--no-wasm', 'use the plain TypeScript kernels instead of WebAssembly SIMD')
  .addOption(new Option('--device <d>', 'cpu: WASM SIMD kernels; webgpu: WGSL kernels on the GPU; auto: a hardware WebGPU adapter if present, else cpu')
    .choices(DEVICE_CHOICES).default('cpu'))
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) })
  .hook('preAction', (cmd) => {
    const o = cmd.opts<{ threads?: number; wasm: boolean }>();
    initCpuBackend({ wasm: o.wasm, threads: o.threads });
  });

program.command('inspect')
  .description('architecture, parameters (total / active per token), experts per layer, memory')
  .argument('<dir>', 'Hugging Face model folder (config.json + *.safetensors)')
  .option('--json', 'machine-readable output')
  .option('--f16', 'with --device webgpu|auto: size expert stacks as f16 storage')
  .action((dir: string, o: { json?: boolean; f16?: boolean }) => inspectCommand(dir, { ...o, device: device() }));

program.command('generate')
  .description('stream a continuation of a prompt (default model when no folder is given)')
  .argument('[model-dir-and-prompt...]', 'optional Hugging Face model folder, then the prompt text')
  .option('--model <dir>', 'model folder (default: the first argument if it is a folder, else the shipped model)')
  .option('--prompt <text>', 'prompt text (needs tokenizer.json in the folder)')
  .option('--prompt-ids <ids>', 'prompt as comma-separated token ids, e.g. 1,2,3')
  .addOption(new Option('--max-new-tokens <n>').default(32).argParser(num('max-new-tokens', 1, 1e6, true)))
  .addOption(new Option('--temperature <t>', '0 = greedy (default: the folder\'s generation_config.json, else greedy)').argParser(num('temperature', 0, 100)))
  .addOption(new Option('--top-p <p>', 'nucleus sampling (default: generation_config.json, else 1)').argParser(num('top-p', 0, 1)))
  .addOption(new Option('--top-k <k>', '0 = no limit (default: generation_config.json, else 0)').argParser(num('top-k', 0, 1e9, true)))
  .addOption(new Option('--seed <s>').default(0).argParser(num('seed', 0, 2 ** 32 - 1, true)))
  .option('--no-stop-at-eos', 'keep going past the end-of-sequence token')
  .option('--trace <file>', 'write the routing trace (experts and gates per MoE layer and token) as JSON')
  .option('--memory-budget <bytes>', 'offload routed experts: keep at most this many bytes of them resident, read the rest on demand (e.g. 512M, 2G)')
  .option('--offload-policy <p>', 'expert cache policy with --memory-budget: lru (default), lfu, prefetch (pre-gated LRU), none')
  .option('--f16', 'with --device webgpu: store weight matrices as f16 on the GPU (prompts on tensor cores with f16 activations where the adapter has subgroup matrices; bf16 checkpoints use them without this flag, at f32 accuracy)')
  .action(async (args: string[], o) => {
    const { dir, prompt } = resolveGenerateArgs(args, o);
    await generateCommand(dir, { ...o, prompt, device: device() });
  });

program.command('random-model')
  .description('write a random-weight MoE checkpoint (for demos, benchmarks, offloading experiments)')
  .argument('<dir>', 'output folder')
  .option('--arch <a>', 'mixtral | qwen3_moe | olmoe', 'qwen3_moe')
  .option('--layers <n>').option('--hidden <n>').option('--ffn <n>', 'expert intermediate size')
  .option('--experts <n>').option('--top-k <n>').option('--heads <n>').option('--kv-heads <n>').option('--vocab <n>')
  .option('--dtype <d>', 'f32 | bf16', 'f32').option('--seed <n>')
  .action((dir: string, o: Record<string, string | undefined>) => randomModelCommand(dir, o));

const train = program.command('train')
  .description('train a small MoE language model (or only its routers) and write a Hugging Face folder')
  .requiredOption('--out <dir>', 'output folder (model, tokenizer, training_log.json, checkpoint/)')
  .option('--config <file>', 'JSON with {model: {...}, train: {...}, router}; flags override it')
  .option('--router <name>', `routing strategy: ${Object.keys(ROUTER_PRESETS).join(', ')}`)
  .option('--text <files...>', 'training text files (default: the shipped public-domain corpus)')
  .option('--tokenizer <dir>', 'reuse this folder\'s tokenizer.json (default: the shipped one, or train a BPE for --text)')
  .option('--vocab <n>', 'vocabulary size of a newly trained BPE tokenizer')
  .option('--init <dir>', 'start from this model folder (fine-tuning)')
  .option('--train-only <what>', '"router": freeze everything except the routers (needs --init)')
  .option('--resume', 'continue from <out>/checkpoint exactly where it stopped')
  .option('--dtype <d>', 'weights written as f32 (default) or bf16')
  .option('--untied', 'separate LM head instead of tied embeddings');
for (const f of ['layers', 'hidden', 'heads', 'kv-heads', 'head-dim', 'expert-ffn', 'experts', 'top-k', 'shared-experts', 'max-positions',
  'steps', 'batch', 'seq', 'lr', 'min-lr', 'warmup', 'weight-decay', 'clip', 'accum', 'seed', 'eval-every', 'eval-batches', 'checkpoint-every']) {
  train.option(`--${f} <n>`);
}
train.action((o: TrainCommandOptions) => { requireCpu(device(), 'training'); return trainCommand(o); });

const compare = program.command('compare-routers')
  .description('train several routers on the same data, tokens and seed; write report.html + report.json')
  .requiredOption('--out <dir>', 'output folder (one model per router + the report)')
  .option('--routers <list>', `comma-separated (default: ${DEFAULT_COMPARISON.join(',')}; all: ${Object.keys(ROUTER_PRESETS).join(',')})`)
  .option('--config <file>', 'JSON with {model: {...}, train: {...}}; flags override it')
  .option('--text <files...>', 'training text files (default: the shipped corpus)')
  .option('--tokenizer <dir>', 'reuse this folder\'s tokenizer.json')
  .option('--report-only', 'rebuild report.html/json from the routers\' training_log.json files in --out (no training)');
for (const o of train.options) if (o.long && !['--out', '--config', '--router', '--text', '--tokenizer', '--init', '--train-only', '--resume', '--vocab'].includes(o.long)) compare.addOption(o);
compare.action((o: TrainCommandOptions & { routers?: string; reportOnly?: boolean }) => { requireCpu(device(), 'training'); return compareRoutersCommand(o); });

program.command('analyze')
  .description('routing analytics of a text (load, entropy, specialisation, affinity, SRP/SCH, similarity): report.html + report.json')
  .argument('[model-dir]', 'Hugging Face model folder (default: the shipped model)')
  .requiredOption('--text <file>', 'text to route')
  .option('--compare <file>', 'second text: adds per-layer routing similarity')
  .option('--out <dir>', 'output folder', 'analysis')
  .addOption(new Option('--window <n>', 'tokens per forward (default 256, at most the model context)').argParser(num('window', 1, 1e6, true)))
  .addOption(new Option('--max-tokens <n>', 'analyze only the first n tokens of each text').argParser(num('max-tokens', 1, 1e9, true)))
  .option('--trace', 'also write the routing trace(s) as trace.json')
  .action((dir: string | undefined, o: AnalyzeOptions) => { requireCpu(device(), 'analyze (it captures every routing detail of the CPU forward)'); analyzeCommand(dir, o); });

function device(): DeviceChoice {
  return program.opts<{ device: DeviceChoice }>().device;
}

function fail(msg: string, e: unknown): never {
  process.stderr.write(`switchyard: error: ${msg}\n`);
  if (verbose && e instanceof Error && e.stack) process.stderr.write(e.stack + '\n');
  process.exit(2);
}

try {
  await program.parseAsync();
  // Dawn keeps the event loop alive after a GPU command; everything is written by now.
  if (program.opts<{ device: DeviceChoice }>().device !== 'cpu') process.exit(0);
} catch (e) {
  if (e instanceof CommanderError) {
    if (e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version') process.exit(0);
    process.exit(2); // commander already printed its one-line message
  }
  if (e instanceof UserError) fail(e.message, e);
  const err = e as Error;
  if (err && (err as NodeJS.ErrnoException).code === 'EPIPE') process.exit(0);
  process.stderr.write(`switchyard: internal error: ${err?.message ?? String(e)}\n`);
  if (err?.stack) process.stderr.write((verbose ? err.stack : err.stack.split('\n').slice(0, 4).join('\n')) + '\n');
  process.exit(1);
}
