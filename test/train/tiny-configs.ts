/** Tiny config.json objects of each supported architecture, for random-model tests (gradient checks, export). */
import type { Config } from '../../src/io/checkpoint.js';

const base = {
  vocab_size: 32, hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1,
  max_position_embeddings: 64, rms_norm_eps: 1e-5, tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2,
  rope_parameters: { rope_theta: 10000, rope_type: 'default' }, router_aux_loss_coef: 0.1,
};

export const TINY_CONFIGS: Record<string, Config> = {
  qwen3_moe: {
    ...base, model_type: 'qwen3_moe', head_dim: 8, intermediate_size: 24, moe_intermediate_size: 8, num_experts: 6,
    num_experts_per_tok: 2, norm_topk_prob: true, decoder_sparse_step: 1, mlp_only_layers: [],
  },
  olmoe: { ...base, model_type: 'olmoe', intermediate_size: 8, num_experts: 6, num_experts_per_tok: 3, norm_topk_prob: false },
  qwen2_moe: {
    ...base, model_type: 'qwen2_moe', intermediate_size: 24, moe_intermediate_size: 8, shared_expert_intermediate_size: 12,
    num_experts: 4, num_experts_per_tok: 2, norm_topk_prob: false, decoder_sparse_step: 1, mlp_only_layers: [],
    use_sliding_window: false,
  },
  mixtral: { ...base, model_type: 'mixtral', head_dim: 8, intermediate_size: 8, num_local_experts: 4, num_experts_per_tok: 2, sliding_window: 3 },
  granitemoe: {
    ...base, model_type: 'granitemoe', intermediate_size: 8, num_local_experts: 4, num_experts_per_tok: 2,
    embedding_multiplier: 3, residual_multiplier: 0.5, logits_scaling: 2, attention_multiplier: 0.3,
  },
  gpt_oss: {
    ...base, model_type: 'gpt_oss', head_dim: 8, intermediate_size: 8, num_local_experts: 4, num_experts_per_tok: 2,
    sliding_window: 3, attention_bias: true, num_key_value_heads: 1,
  },
  deepseek_v2: {
    ...base, model_type: 'deepseek_v2', num_hidden_layers: 2, num_key_value_heads: 2, intermediate_size: 24,
    moe_intermediate_size: 8, n_routed_experts: 8, n_shared_experts: 1, num_experts_per_tok: 3, n_group: 4, topk_group: 2,
    topk_method: 'group_limited_greedy', routed_scaling_factor: 1.5, first_k_dense_replace: 1, q_lora_rank: null,
    kv_lora_rank: 8, qk_rope_head_dim: 4, qk_nope_head_dim: 4, v_head_dim: 6, moe_layer_freq: 1,
  },
  deepseek_v3: {
    ...base, model_type: 'deepseek_v3', num_hidden_layers: 2, num_key_value_heads: 2, intermediate_size: 24,
    moe_intermediate_size: 8, n_routed_experts: 8, n_shared_experts: 1, num_experts_per_tok: 2, n_group: 4, topk_group: 2,
    routed_scaling_factor: 2.5, first_k_dense_replace: 1, q_lora_rank: 8, kv_lora_rank: 8, qk_rope_head_dim: 4,
    qk_nope_head_dim: 4, v_head_dim: 6, norm_topk_prob: true,
  },
  // Switchyard's own model type with zoo routers: exercises the MoE block's zero / copy / constant experts.
  'switchyard_moe+moe++': {
    ...base, model_type: 'switchyard_moe', head_dim: 8, intermediate_size: 24, moe_intermediate_size: 8, num_experts: 4,
    num_experts_per_tok: 2, n_shared_experts: 1,
    router: { kind: 'moe-plus-plus', zero: 1, copy: 1, constant: 1, gatingResidual: true }, extra_experts: ['zero', 'copy', 'constant'],
  },
  'switchyard_moe+null': {
    ...base, model_type: 'switchyard_moe', head_dim: 8, intermediate_size: 24, moe_intermediate_size: 8, num_experts: 4,
    num_experts_per_tok: 2, router: { kind: 'null-experts', numNull: 2, normTopK: true }, extra_experts: ['zero', 'zero'],
  },
};
