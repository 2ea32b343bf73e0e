/** Causal scaled-dot-product attention over whole sequences (training: no KV cache). */
import { Var } from '../var.js';
const todo = (n: string): never => { throw new Error(`autograd op ${n} not implemented yet`); };

export interface AttentionShape {
  B: number; S: number; H: number; KVH: number; dq: number; dv: number;
  scale: number;
  /** Sliding window (keys j with i − window < j ≤ i), null = full causal. */
  window?: number | null;
}

/**
 * q [B·S, H·dq], k [B·S, KVH·dq], v [B·S, KVH·dv] → [B·S, H·dv]. GQA: head h uses kv head ⌊h / (H / KVH)⌋.
 * `sinks` [H] (GPT-OSS): an extra per-head logit in the softmax that carries no value; gets a gradient too.
 */
export function attention(q: Var, k: Var, v: Var, s: AttentionShape, sinks?: Var): Var {
  return todo('attention' + q.op + k.op + v.op + s.B + String(sinks));
}
