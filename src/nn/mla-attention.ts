/** STUB — Multi-head Latent Attention (DeepSeek-V2/V3), to be implemented. */
import type { Checkpoint } from '../io/checkpoint.js';
import type { MlaAttentionSpec } from '../models/spec.js';
import type { LayerKVCache } from '../infer/kv-cache.js';
import type { AttentionModule } from './attention-module.js';

export class MlaAttention implements AttentionModule {
  readonly cacheWidths = { k: 0, v: 0 };
  constructor(_spec: MlaAttentionSpec, _D: number, _ck: Checkpoint, _maxPositions: number, _keepBf16: boolean) {
    throw new Error('MLA attention not implemented yet');
  }
  forward(_x: Float32Array, _S: number, _start: number, _cache: LayerKVCache): Float32Array {
    throw new Error('MLA attention not implemented yet');
  }
}
