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

/**
 * Balancing options shared by the research routers (src/moe/routers/zoo.ts); every field is optional and off when
 * absent. Aux losses are computed only when routing for training (RouterContext.training).
 */
export interface ZooBalance {
  /** Switch/GShard load-balancing loss coefficient (src/moe/balance/switch-loss.ts; = 1 at uniform load). */
  lbCoef?: number;
  /** ST-MoE router z-loss coefficient: mean over tokens of logsumexp(logits)² (src/moe/balance/z-loss.ts). */
  zCoef?: number;
  /** Soft-orthogonality coefficient on the row-normalised router weight (src/moe/balance/orthogonality.ts). */
  orthoCoef?: number;
  /**
   * Capacity factor cf: each routed FFN expert keeps at most C = ⌈cf · T · k / E⌉ slots, the rest are dropped
   * (src/moe/balance/capacity.ts). Absent = dropless. Applied in training only unless `capacityAtEval`.
   */
  capacityFactor?: number;
  /** Which slots win when an expert is over capacity: 'position' (GShard/Switch, default) or 'score' (BPR). */
  capacityPriority?: 'position' | 'score';
  capacityAtEval?: boolean;
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
  | { kind: 'sparsemixer'; jitterEps: number }
  // ---- Research routers (trainable only; src/moe/routers/zoo.ts builds them, the inference MoE block runs them) ----
  /** Softmax top-k with Switch load-balancing loss, router z-loss and optional capacity dropping. */
  | ({ kind: 'balanced-softmax-topk'; normTopK: boolean } & ZooBalance)
  /**
   * Sigmoid scores + auxiliary-loss-free bias balancing (DeepSeek-V3 / Wang et al. 2024): per-expert bias added for
   * selection only, bias += biasUpdateRate · sign(mean load − load) after each step. Optional group-limited top-k.
   */
  | ({ kind: 'aux-free-sigmoid'; normTopK: boolean; scaling?: number; biasUpdateRate?: number; nGroup?: number; topkGroup?: number } & ZooBalance)
  /** Group-limited top-k (DeepSeek-V2/V3): keep the topkGroup best of nGroup expert groups, then top-k inside them. */
  | ({ kind: 'group-limited-topk'; score: 'softmax' | 'sigmoid'; nGroup: number; topkGroup: number; groupScore?: 'max' | 'top2-sum'; normTopK: boolean; scaling?: number } & ZooBalance)
  /** Expert choice (Zhou et al. 2022): each expert takes its top C = ⌈capacityFactor · T · k / E⌉ tokens. */
  | ({ kind: 'expert-choice'; capacityFactor?: number } & Pick<ZooBalance, 'zCoef' | 'orthoCoef'>)
  /** AdaMoE null experts (Zeng et al. 2024): numNull zero-FLOP experts join the top-k. */
  | ({ kind: 'null-experts'; numNull: number; normTopK: boolean } & ZooBalance)
  /**
   * MoE++ (Jin et al. 2024): zero / copy / constant experts after the FFN experts (in that order), gating residuals
   * (this layer's logits + W_g · previous layer's logits), heterogeneous load balancing (τ on zero-computation experts).
   */
  | ({ kind: 'moe-plus-plus'; zero: number; copy: number; constant: number; gatingResidual: boolean; tau?: number; normTopK?: boolean } & ZooBalance)
  /** Dynamic top-p (Huang et al. 2024): experts by descending probability until the cumulative ≥ threshold. */
  | ({ kind: 'top-p'; threshold: number; maxK?: number; entropyCoef?: number } & ZooBalance)
  /** ReMoE (Wang et al. 2024): gates = ReLU(W x), L1 penalty with λ adapted toward `targetActive` experts per token. */
  | ({ kind: 'relu'; targetActive?: number; l1Init?: number; l1Multiplier?: number; balancedL1?: boolean } & Pick<ZooBalance, 'zCoef' | 'orthoCoef'>)
  /** RMoE (Qiu et al. 2024): a GRU carries routing state across layers; softmax top-k on W · h. */
  | ({ kind: 'recurrent'; projDim: number; hiddenDim?: number; normTopK: boolean } & ZooBalance);
