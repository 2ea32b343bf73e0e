/**
 * What a checkpoint is, computed from config.json and the safetensors headers alone (no weights read):
 * architecture, sizes, experts per layer, parameters in total and active per token, bytes on disk and in memory.
 */
import { Checkpoint, readConfig } from '../io/checkpoint.js';
import { specFor } from './registry.js';
import type { ExpertLayout, ModelSpec } from './spec.js';

export interface LayerSummary {
  layer: number;
  attention: string;
  ffn: 'dense' | 'moe';
  experts?: number;
  topK?: number;
  router?: string;
  sharedExperts?: boolean;
  routedParams: number;
}

export interface ModelSummary {
  modelType: string;
  layers: number;
  hiddenSize: number;
  vocabSize: number;
  params: number;
  activeParams: number;
  diskBytes: number;
  /** Bytes once loaded: f32 and bf16 kept as they are, f16 widened to f32. */
  memoryBytes: number;
  expertBytes: number;
  dtypes: Record<string, number>;
  perLayer: LayerSummary[];
  spec: ModelSpec;
}

function expertTensorNames(layout: ExpertLayout, E: number): string[] {
  if (layout.kind === 'per-expert') {
    const names: string[] = [];
    for (let e = 0; e < E; e++) for (const p of [layout.gate, layout.up, layout.down]) names.push(`${layout.prefix}.${e}.${p}.weight`);
    return names;
  }
  const names = [layout.gateUp, layout.down];
  if (layout.kind === 'fused-transposed-interleaved') {
    if (layout.gateUpBias) names.push(layout.gateUpBias);
    if (layout.downBias) names.push(layout.downBias);
  }
  return names;
}

export function summarize(dir: string): ModelSummary {
  const config = readConfig(dir);
  const ck = new Checkpoint(dir);
  try {
    const names = ck.names();
    const spec = specFor(config, new Set(names));
    const numel = (n: string): number => (ck.has(n) ? ck.info(n).shape.reduce((a, b) => a * b, 1) : 0);
    let params = 0;
    let diskBytes = 0;
    let memoryBytes = 0;
    const dtypes: Record<string, number> = {};
    for (const n of names) {
      const info = ck.info(n);
      const c = info.shape.reduce((a, b) => a * b, 1);
      params += c;
      diskBytes += info.byteLength;
      memoryBytes += info.dtype === 'F16' ? c * 4 : info.byteLength;
      dtypes[info.dtype] = (dtypes[info.dtype] ?? 0) + c;
    }
    let inactive = 0;
    let expertBytes = 0;
    const perLayer = spec.layers.map((l, i): LayerSummary => {
      const attention = l.attention.kind === 'gqa'
        ? `GQA ${l.attention.numHeads}q/${l.attention.numKvHeads}kv×${l.attention.headDim}${l.attention.slidingWindow ? ` window ${l.attention.slidingWindow}` : ''}${l.attention.sinks ? ' sinks' : ''}`
        : `MLA ${l.attention.numHeads} heads, kv rank ${l.attention.kvLoraRank}`;
      if (l.ffn.kind === 'dense') return { layer: i, attention, ffn: 'dense', routedParams: 0 };
      const tensors = expertTensorNames(l.ffn.experts, l.ffn.numExperts);
      const routed = tensors.reduce((a, n) => a + numel(n), 0);
      expertBytes += tensors.reduce((a, n) => a + (ck.has(n) ? ck.info(n).byteLength : 0), 0);
      inactive += routed * (1 - l.ffn.topK / l.ffn.numExperts);
      return {
        layer: i, attention, ffn: 'moe', experts: l.ffn.numExperts, topK: l.ffn.topK, router: l.ffn.router.kind,
        sharedExperts: Boolean(l.ffn.shared), routedParams: routed,
      };
    });
    return {
      modelType: spec.modelType, layers: spec.layers.length, hiddenSize: spec.hiddenSize, vocabSize: spec.vocabSize,
      params, activeParams: Math.round(params - inactive), diskBytes, memoryBytes, expertBytes, dtypes, perLayer, spec,
    };
  } finally {
    ck.close();
  }
}
