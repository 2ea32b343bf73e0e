/**
 * Autoregressive generation with a KV cache: one prefill over the prompts, then one token per step.
 * Every sequence of the batch advances in lock-step (equal-length prompts). Tokens stream through `onToken`.
 */
import type { CausalLM } from '../models/causal-lm.js';
import { Sampler, type SamplingOptions } from './sampling.js';

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  /** Stop a sequence when it emits one of these (default: none). Batch generation stops when all have stopped. */
  stopTokens?: readonly number[];
  /** Called with (sequence index, token) as soon as each token is chosen. */
  onToken?: (b: number, token: number) => void;
}

/** prompts: B equal-length token arrays. Returns prompt + generated tokens for each. */
export function generate(model: CausalLM, prompts: readonly (readonly number[])[], opts: GenerateOptions): number[][] {
  const B = prompts.length;
  const P = prompts[0]?.length ?? 0;
  if (B === 0 || P === 0) throw new Error('generate: need at least one non-empty prompt');
  if (prompts.some((p) => p.length !== P)) throw new Error('generate: prompts must have equal lengths');
  const V = model.spec.vocabSize;
  const sampler = new Sampler(opts);
  const stop = new Set(opts.stopTokens ?? []);
  const cache = model.newCache(B);
  const out = prompts.map((p) => [...p]);
  const done = new Array<boolean>(B).fill(false);
  let { logits } = model.forward(prompts.flat(), B, cache);
  let S = P;
  for (let step = 0; step < opts.maxNewTokens; step++) {
    const next: number[] = [];
    for (let b = 0; b < B; b++) {
      const tok = sampler.next(logits, (b * S + S - 1) * V, V);
      next.push(tok);
      if (!done[b]) {
        out[b]!.push(tok);
        opts.onToken?.(b, tok);
        if (stop.has(tok)) done[b] = true;
      }
    }
    if (done.every(Boolean) || step === opts.maxNewTokens - 1) break;
    ({ logits } = model.forward(next, B, cache));
    S = 1;
  }
  return out;
}
