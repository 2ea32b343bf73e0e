/**
 * The router contract. A router turns router logits [T, E] (x · W_routerᵀ + b, computed by the MoE block) into a
 * routing: for each token, k expert ids and their gate weights. Routers never touch expert weights.
 * Each routing rule lives in its own file in this folder; `makeRouter` picks one from a RouterSpec.
 */
export interface Routing {
  /** Tokens routed. */
  T: number;
  /** Experts per token (slots per token). */
  k: number;
  /** Routed experts E. */
  E: number;
  /** Raw router logits [T, E], as models report them (`router_logits`). */
  logits: Float32Array;
  /** Scores the rule selected on, [T, E] (softmax probabilities, sigmoid scores, ...). */
  scores: Float32Array;
  /** Chosen expert ids [T, k]. */
  experts: Int32Array;
  /** Gate weight of each chosen expert [T, k] (already renormalised / scaled as the rule says). */
  gates: Float32Array;
}

export interface Router {
  readonly name: string;
  readonly numExperts: number;
  readonly topK: number;
  route(logits: Float32Array, T: number): Routing;
}

export type RouterSpec =
  /** Mixtral, Qwen2/3-MoE, OLMoE: softmax over all experts, top-k, optional renormalisation. */
  | { kind: 'softmax-topk'; normTopK: boolean }
  /** GPT-OSS, Granite: top-k of the logits, softmax over the k chosen. */
  | { kind: 'topk-softmax' }
  /** DeepSeek-V3: sigmoid scores, + correction bias for selection, group-limited top-k, routed scaling. */
  | { kind: 'sigmoid-group-topk'; nGroup: number; topkGroup: number; normTopK: boolean; scaling: number; biasName: string }
  /** DeepSeek-V2: softmax scores, greedy or group-limited greedy top-k, routed scaling. */
  | { kind: 'group-limited-greedy'; nGroup: number; topkGroup: number; method: 'greedy' | 'group_limited_greedy'; normTopK: boolean; scaling: number }
  /** Phi-MoE: sparsemixer top-2 (eval mode). */
  | { kind: 'sparsemixer'; jitterEps: number };
