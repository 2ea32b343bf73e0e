/**
 * Autoregressive generation with a KV cache: one prefill over the prompts, then one token per step.
 * Every sequence of the batch advances in lock-step (equal-length prompts). Tokens stream through `onToken`.
 * The loop is written once (`generationSteps`) and driven synchronously for the CPU CausalLM (`generate`) and
 * asynchronously for a device model whose forward resolves later (`generateAsync`).
 */
import type { CausalLM } from '../models/causal-lm.js';
import { Sampler, type SamplingOptions } from './sampling.js';
import { checkGenerateOptions, checkLogitsRow, checkPrompts } from './generation-checks.js';

export { GenerationError } from './generation-checks.js';

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  /** Stop a sequence when it emits one of these (default: none). Batch generation stops when all have stopped. */
  stopTokens?: readonly number[];
  /** Called with (sequence index, token) as soon as each token is chosen. */
  onToken?: (b: number, token: number) => void;
  /**
   * Allow prompt length + maxNewTokens beyond the model's max_position_embeddings (default false: that is a
   * GenerationError before anything runs). Positions past the trained range are computed the same way as inside it
   * (RoPE angles per position, KV cache grown on demand), as transformers does; output quality is then unknown.
   */
  allowLonger?: boolean;
}

/** A forward step the generation loop asks for: ids [B·S] continuing the cache. */
interface Step {
  ids: number[];
  B: number;
}

/**
 * The generation loop: yields the ids to run, receives their logits [B, S', V] — every position (S' = S) or only each
 * sequence's last one (S' = 1); returns prompt + generated tokens.
 */
function* generationSteps(prompts: readonly (readonly number[])[], V: number, opts: GenerateOptions): Generator<Step, number[][], Float32Array> {
  const B = prompts.length;
  const P = prompts[0]!.length; // checked by checkPrompts before the loop starts
  const sampler = new Sampler(opts);
  const stop = new Set(opts.stopTokens ?? []);
  const out = prompts.map((p) => [...p]);
  const done = new Array<boolean>(B).fill(false);
  let logits = yield { ids: prompts.flat(), B };
  for (let step = 0; step < opts.maxNewTokens; step++) {
    const S = logits.length / (B * V);
    const next: number[] = [];
    for (let b = 0; b < B; b++) {
      const at = (b * S + S - 1) * V;
      checkLogitsRow(logits, at, V, step, P - 1 + step, b, B);
      const tok = sampler.next(logits, at, V);
      next.push(tok);
      if (!done[b]) {
        out[b]!.push(tok);
        opts.onToken?.(b, tok);
        if (stop.has(tok)) done[b] = true;
      }
    }
    if (done.every(Boolean) || step === opts.maxNewTokens - 1) break;
    logits = yield { ids: next, B };
  }
  return out;
}

/** prompts: B equal-length token arrays. Returns prompt + generated tokens for each. */
/** Options and prompts (context length included), checked before the KV cache exists or any forward runs. */
function checkAll(spec: { readonly vocabSize: number; readonly maxPositions?: number }, prompts: readonly (readonly number[])[], opts: GenerateOptions): void {
  checkGenerateOptions(opts);
  checkPrompts(prompts, spec.vocabSize, spec.maxPositions, opts);
}

export function generate(model: CausalLM, prompts: readonly (readonly number[])[], opts: GenerateOptions): number[][] {
  checkAll(model.spec, prompts, opts);
  const cache = model.newCache(prompts.length);
  const steps = generationSteps(prompts, model.spec.vocabSize, opts);
  let r = steps.next();
  while (!r.done) r = steps.next(model.forward(r.value.ids, r.value.B, cache).logits);
  return r.value;
}

/** A model whose forward resolves asynchronously (the device graph, src/models/device-causal-lm.ts). */
export interface AsyncStepModel<C> {
  /** maxPositions: max_position_embeddings (undefined = no limit known; the context length is then unchecked). */
  readonly spec: { readonly vocabSize: number; readonly maxPositions?: number };
  newCache(batch: number): C;
  /** With `lastOnly`, logits of each sequence's last position only ([B, 1, V]: less to compute and read back). */
  forward(ids: ArrayLike<number>, B: number, cache: C, opts: { lastOnly: boolean }): Promise<{ logits: Float32Array }>;
}

/** `generate` for a device model; the cache is released afterwards when it has a release(). */
export async function generateAsync<C>(model: AsyncStepModel<C>, prompts: readonly (readonly number[])[], opts: GenerateOptions): Promise<number[][]> {
  checkAll(model.spec, prompts, opts);
  const cache = model.newCache(prompts.length);
  try {
    const steps = generationSteps(prompts, model.spec.vocabSize, opts);
    let r = steps.next();
    while (!r.done) r = steps.next((await model.forward(r.value.ids, r.value.B, cache, { lastOnly: true })).logits);
    return r.value;
  } finally {
    (cache as { release?: () => void }).release?.();
  }
}
