/**
 * Random-weight Hugging Face checkpoints of a chosen MoE shape (Mixtral, Qwen3-MoE or OLMoE layout), for demos,
 * benchmarks and offloading experiments: config.json + model.safetensors that the loader (and transformers) accept.
 * Weights are drawn uniform in ±√3·σ with σ = 1/√fan_in (unit-variance activations), from a seeded PRNG.
 */
import { mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic-write.js';
import { writeSafetensorsStreaming, type StreamedTensor } from '../io/safetensors-writer.js';
import { f32ToBf16 } from '../tensor/dtype.js';
import { UserError } from '../util/errors.js';

export interface RandomModelShape {
  arch: 'mixtral' | 'qwen3_moe' | 'olmoe';
  layers: number;
  hidden: number;
  ffn: number;
  experts: number;
  topK: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  dtype: 'F32' | 'BF16';
  seed: number;
}

export const RANDOM_DEFAULTS: RandomModelShape = {
  arch: 'qwen3_moe', layers: 4, hidden: 128, ffn: 64, experts: 16, topK: 4, heads: 4, kvHeads: 2, vocab: 512, dtype: 'F32', seed: 1,
};

function xorshift(seed: number): () => number {
  let s = (seed * 2654435761) >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

export function writeRandomCheckpoint(dir: string, shape: RandomModelShape, onProgress?: (done: number, total: number) => void): void {
  const { arch, layers: L, hidden: D, ffn: F, experts: E, topK: k, heads: H, kvHeads: KVH, vocab: V } = shape;
  if (D % H !== 0) throw new UserError(`hidden size ${D} is not divisible by ${H} heads`);
  if (H % KVH !== 0) throw new UserError(`${H} heads are not divisible by ${KVH} kv heads`);
  if (k > E) throw new UserError(`top-k ${k} exceeds ${E} experts`);
  const hd = D / H;
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
  const rng = xorshift(shape.seed);
  const bpe = shape.dtype === 'F32' ? 4 : 2;
  const tensors: StreamedTensor[] = [];
  const add = (name: string, dims: number[], kind: 'rand' | 'ones'): void => {
    const fanIn = dims[dims.length - 1]!;
    const a = Math.sqrt(3 / fanIn);
    tensors.push({
      name, dtype: shape.dtype, shape: dims,
      fill(dst) {
        const n = dst.length / bpe;
        if (bpe === 4) {
          const f = new Float32Array(dst.buffer, dst.byteOffset, n);
          for (let i = 0; i < n; i++) f[i] = kind === 'ones' ? 1 : (rng() * 2 - 1) * a;
        } else {
          const u = new Uint16Array(dst.buffer, dst.byteOffset, n);
          for (let i = 0; i < n; i++) u[i] = f32ToBf16(kind === 'ones' ? 1 : (rng() * 2 - 1) * a);
        }
      },
    });
  };
  add('model.embed_tokens.weight', [V, D], 'rand');
  for (let i = 0; i < L; i++) {
    const p = `model.layers.${i}`;
    add(`${p}.input_layernorm.weight`, [D], 'ones');
    add(`${p}.post_attention_layernorm.weight`, [D], 'ones');
    add(`${p}.self_attn.q_proj.weight`, [H * hd, D], 'rand');
    add(`${p}.self_attn.k_proj.weight`, [KVH * hd, D], 'rand');
    add(`${p}.self_attn.v_proj.weight`, [KVH * hd, D], 'rand');
    add(`${p}.self_attn.o_proj.weight`, [D, H * hd], 'rand');
    if (arch === 'qwen3_moe') {
      add(`${p}.self_attn.q_norm.weight`, [hd], 'ones');
      add(`${p}.self_attn.k_norm.weight`, [hd], 'ones');
    } else if (arch === 'olmoe') {
      add(`${p}.self_attn.q_norm.weight`, [H * hd], 'ones');
      add(`${p}.self_attn.k_norm.weight`, [KVH * hd], 'ones');
    }
    const m = arch === 'mixtral' ? `${p}.block_sparse_moe` : `${p}.mlp`;
    add(`${m}.gate.weight`, [E, D], 'rand');
    for (let e = 0; e < E; e++) {
      const [g, u, d] = arch === 'mixtral' ? ['w1', 'w3', 'w2'] : ['gate_proj', 'up_proj', 'down_proj'];
      add(`${m}.experts.${e}.${g}.weight`, [F, D], 'rand');
      add(`${m}.experts.${e}.${u}.weight`, [F, D], 'rand');
      add(`${m}.experts.${e}.${d}.weight`, [D, F], 'rand');
    }
  }
  add('model.norm.weight', [D], 'ones');
  add('lm_head.weight', [V, D], 'rand');
  const base = {
    architectures: [{ mixtral: 'MixtralForCausalLM', qwen3_moe: 'Qwen3MoeForCausalLM', olmoe: 'OlmoeForCausalLM' }[arch]],
    model_type: arch, vocab_size: V, hidden_size: D, num_hidden_layers: L, num_attention_heads: H,
    num_key_value_heads: KVH, head_dim: hd, max_position_embeddings: 4096, rms_norm_eps: 1e-6,
    rope_parameters: { rope_theta: 10000, rope_type: 'default' }, tie_word_embeddings: false,
    bos_token_id: 1, eos_token_id: 2, num_experts_per_tok: k, router_aux_loss_coef: 0.01,
    dtype: shape.dtype === 'F32' ? 'float32' : 'bfloat16',
  };
  const extra = arch === 'mixtral'
    ? { intermediate_size: F, num_local_experts: E, hidden_act: 'silu' }
    : arch === 'qwen3_moe'
      ? { intermediate_size: F, moe_intermediate_size: F, num_experts: E, norm_topk_prob: true, decoder_sparse_step: 1, mlp_only_layers: [] }
      : { intermediate_size: F, num_experts: E, norm_topk_prob: false };
  writeSafetensorsStreaming(join(dir, 'model.safetensors'), tensors, { format: 'pt', generator: 'switchyard' }, onProgress);
  writeFileAtomic(join(dir, 'config.json'), JSON.stringify({ ...base, ...extra }, null, 2) + '\n');
}
