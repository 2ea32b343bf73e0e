/**
 * The browser entry point (bundled by scripts/build-browser.mjs into dist/browser/switchyard.js): WebGPU inference
 * of a Hugging Face MoE checkpoint in a web page. Nothing reachable from here imports a Node module: checkpoints are
 * fetched into memory (MemoryCheckpoint), the GPU is `navigator.gpu` (GpuContext), and weights are plain typed
 * arrays (the WASM heap allocator is never installed in a page).
 *
 *   import { loadModelFromUrl } from './switchyard.js';
 *   const { model } = await loadModelFromUrl('/models/qwen3_moe/');
 *   const { logits } = await model.forward(ids, 1);
 *   const [tokens] = await generateAsync(model, [ids], { maxNewTokens: 32, temperature: 0.7, seed: 1 });
 */
import { GpuContext } from './backend/webgpu/context.js';
import { MemoryCheckpoint } from './io/memory-checkpoint.js';
import { INDEX_FILE, parseIndex, parseJson, shardNames } from './io/safetensors-weights.js';
import { specFor } from './models/registry.js';
import { GpuCausalLM } from './models/gpu-causal-lm.js';
import type { Config } from './io/weight-source.js';
import type { ModelSpec } from './models/spec.js';
import { UserError } from './util/errors.js';

export { GpuContext, Params, type GpuTensor, type GpuContextOptions } from './backend/webgpu/context.js';
export { GpuCausalLM } from './models/gpu-causal-lm.js';
export { generateAsync, GenerationError, type GenerateOptions } from './infer/generate.js';
export { MemoryCheckpoint } from './io/memory-checkpoint.js';
export { specFor, supportedModelTypes } from './models/registry.js';
export type { Config, WeightOptions, WeightSource } from './io/weight-source.js';
export type { ModelSpec } from './models/spec.js';
export { UserError } from './util/errors.js';

/** A folder URL with a trailing slash, absolute (relative URLs resolve against the page). */
function folderUrl(baseUrl: string): URL {
  const here = (globalThis as { location?: { href?: string } }).location?.href;
  return new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`, here);
}

async function get(url: URL, optional = false): Promise<Uint8Array | undefined> {
  let r: Response;
  try {
    r = await fetch(url);
  } catch (e) {
    throw new UserError(`GET ${url.href} failed: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (optional && r.status === 404) return undefined;
  if (!r.ok) throw new UserError(`GET ${url.href}: HTTP ${r.status} ${r.statusText}`);
  return new Uint8Array(await r.arrayBuffer());
}

/**
 * Fetch a model folder into a MemoryCheckpoint. Without `files`: config.json and model.safetensors.index.json (a
 * 404 there means a single model.safetensors), then the shards the index lists. With `files`: exactly those names,
 * plus any shard an index among them lists that was not named.
 */
export async function fetchCheckpoint(baseUrl: string, files?: readonly string[]): Promise<MemoryCheckpoint> {
  const base = folderUrl(baseUrl);
  const got = new Map<string, Uint8Array>();
  const fetchAll = async (names: readonly string[], optional = false): Promise<void> => {
    const bodies = await Promise.all(names.map((n) => get(new URL(n, base), optional)));
    names.forEach((n, i) => { if (bodies[i]) got.set(n, bodies[i]!); });
  };
  if (files) await fetchAll(files);
  else {
    await fetchAll(['config.json']);
    await fetchAll([INDEX_FILE], true);
    if (!got.has(INDEX_FILE)) await fetchAll(['model.safetensors']);
  }
  const index = got.get(INDEX_FILE);
  if (index) {
    const label = new URL(INDEX_FILE, base).href;
    const shards = shardNames(parseIndex(parseJson(new TextDecoder().decode(index), label), label));
    await fetchAll(shards.filter((n) => !got.has(n)));
  }
  return new MemoryCheckpoint(got, base.href);
}

export interface LoadFromUrlOptions {
  /** A context to load into (default: a new one on `navigator.gpu`). */
  ctx?: GpuContext;
  /** Store matrices as f16 on the GPU (needs shader-f16). */
  f16?: boolean;
}

export interface BrowserModel {
  ctx: GpuContext;
  config: Config;
  spec: ModelSpec;
  checkpoint: MemoryCheckpoint;
  model: GpuCausalLM;
}

/** Fetch a Hugging Face model folder (see fetchCheckpoint) and load it onto the GPU. */
export async function loadModelFromUrl(baseUrl: string, files?: readonly string[], opts: LoadFromUrlOptions = {}): Promise<BrowserModel> {
  const checkpoint = await fetchCheckpoint(baseUrl, files);
  const config = checkpoint.config();
  const spec = specFor(config, new Set(checkpoint.names()));
  const ctx = opts.ctx ?? (await GpuContext.create());
  const model = await GpuCausalLM.load(ctx, spec, checkpoint, { f16: opts.f16 });
  return { ctx, config, spec, checkpoint, model };
}
