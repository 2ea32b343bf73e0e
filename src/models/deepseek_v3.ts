/**
 * DeepSeek-V3 (DeepSeek-AI, 2024, arXiv:2412.19437): DeepSeek-V2's MLA (with q LoRA) and DeepSeekMoE layout, routed
 * by sigmoid scores with an `e_score_correction_bias` for selection only (auxiliary-loss-free balancing), group-limited
 * top-k (group score = sum of the top-2 biased scores), gates renormalised when `norm_topk_prob` and scaled by
 * `routed_scaling_factor`. RoPE in the interleaved pair layout when `rope_interleave` (the default), else the half
 * layout. The multi-token-prediction layers (`num_nextn_predict_layers`) are not part of the causal LM and are ignored.
 */
import { ConfigReader, baseSpec, layerPrefix, range, standardLayer } from './common.js';
import { deepseekFfn, mlaAttention } from './deepseek_v2.js';
import type { ModelSpec } from './spec.js';
import type { RouterSpec } from '../moe/routers/router.js';
import type { Config } from '../io/checkpoint.js';
import { DEEPSEEK_KEYS, deepseekCheck } from './deepseek_v2.js';
import type { ArchConfig } from './config-schema.js';
import { ropeCheck } from './config-keys.js';

/** The keys modeling_deepseek_v3.py reads (docs/config-audit.md). */
export const deepseekV3Config: ArchConfig = {
  schema: {
    ...DEEPSEEK_KEYS,
    rope_interleave: { type: 'bool', default: true },
    // DeepseekV3 routes with noaux_tc only (sigmoid scores, e_score_correction_bias); the key is informational.
    topk_method: { type: 'string', oneOf: ['noaux_tc'] },
    // Multi-token-prediction layers are not part of the causal LM.
    num_nextn_predict_layers: { type: 'int', min: 0, max: 64 },
  },
  checks: [ropeCheck(), deepseekCheck],
};

export function deepseekV3Spec(cfg: Config, names: ReadonlySet<string>): ModelSpec {
  const c = new ConfigReader(cfg, 'deepseek_v3');
  const interleaved = c.bool('rope_interleave', true);
  const layers = range(c.int('num_hidden_layers')).map((i) => {
    const router: RouterSpec = {
      kind: 'sigmoid-group-topk',
      nGroup: c.int('n_group', 1),
      topkGroup: c.int('topk_group', 1),
      normTopK: c.bool('norm_topk_prob', true),
      scaling: c.num('routed_scaling_factor', 1),
      biasName: `${layerPrefix(i)}.mlp.gate.e_score_correction_bias`,
    };
    return standardLayer(c, i, mlaAttention(c, i, interleaved), deepseekFfn(c, i, names, router));
  });
  return baseSpec(c, layers);
}
