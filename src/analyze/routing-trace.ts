/**
 * Routing traces: for each MoE layer and each token position, the chosen expert ids and their gate weights
 * (a variable number per token, so zoo routers with dynamic k and zero-computation experts fit), plus the token
 * ids. Recorded from `CausalLM.forward(..., capture = true)` over a text cut into context windows; the metrics in
 * this folder are pure functions of a trace. Plain arrays so a trace is its own JSON.
 */
import type { CausalLM } from '../models/causal-lm.js';
import type { Routing } from '../moe/routers/router.js';
import type { SlotRoutingResult } from '../nn/ffn-module.js';

export interface LayerTrace {
  /** Decoder layer index (dense layers have no trace). */
  layer: number;
  /** Routed FFN experts E (ids 0..E−1). */
  numExperts: number;
  /** All ids a router may pick: E + zero-computation experts (ids E..numIds−1, which have no weights). */
  numIds: number;
  /** CSR: the slots of token t are offsets[t] .. offsets[t+1]−1 (length T+1). */
  offsets: number[];
  experts: number[];
  gates: number[];
}

export interface RoutingTrace {
  /** Token ids, in position order (windows concatenated). */
  tokens: number[];
  /** One entry per MoE layer, in layer order. */
  layers: LayerTrace[];
  /** Context window used to record it (tokens per forward). */
  window?: number;
}

/** Slots (experts, gates) of token t in a layer. */
export function tokenSlots(l: LayerTrace, t: number): { experts: number[]; gates: number[] } {
  const a = l.offsets[t]!;
  const b = l.offsets[t + 1]!;
  return { experts: l.experts.slice(a, b), gates: l.gates.slice(a, b) };
}

/** Build a trace by hand (tests, other tools): perToken[l][t] = [[expert, gate], ...]. */
export function traceFromSlots(tokens: readonly number[], numExperts: number, perLayer: readonly (readonly (readonly (readonly [number, number])[])[])[], numIds = numExperts): RoutingTrace {
  return {
    tokens: [...tokens],
    layers: perLayer.map((perToken, li) => {
      if (perToken.length !== tokens.length) throw new Error(`layer ${li}: ${perToken.length} token rows for ${tokens.length} tokens`);
      const l: LayerTrace = { layer: li, numExperts, numIds, offsets: [0], experts: [], gates: [] };
      for (const slots of perToken) {
        for (const [e, g] of slots) { l.experts.push(e); l.gates.push(g); }
        l.offsets.push(l.experts.length);
      }
      return l;
    }),
  };
}

function emptyLayer(layer: number, numExperts: number, numIds: number): LayerTrace {
  return { layer, numExperts, numIds, offsets: [0], experts: [], gates: [] };
}

function appendRouting(l: LayerTrace, r: Routing): void {
  for (let t = 0; t < r.T; t++) {
    for (let j = 0; j < r.k; j++) { l.experts.push(r.experts[t * r.k + j]!); l.gates.push(r.gates[t * r.k + j]!); }
    l.offsets.push(l.experts.length);
  }
}

function appendSlots(l: LayerTrace, s: SlotRoutingResult): void {
  // Slots are not necessarily grouped by token: bucket them.
  const per: number[][] = Array.from({ length: s.T }, () => []);
  for (let i = 0; i < s.tokens.length; i++) per[s.tokens[i]!]!.push(i);
  for (let t = 0; t < s.T; t++) {
    for (const i of per[t]!) { l.experts.push(s.experts[i]!); l.gates.push(s.gates[i]!); }
    l.offsets.push(l.experts.length);
  }
}

export interface TraceOptions {
  /** Tokens per forward (default 256, capped at the model's context). */
  window?: number;
  /** Called after each window: (tokens done, total). */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Record the routing of `ids`: the text is cut into consecutive windows of `window` tokens, each run as its own
 * sequence (fresh KV cache, positions from 0), so routing is what the model does with that much context.
 */
export function traceTokens(model: CausalLM, ids: readonly number[], opts: TraceOptions = {}): RoutingTrace {
  const window = Math.max(1, Math.min(opts.window ?? 256, model.spec.maxPositions));
  const layers = new Map<number, LayerTrace>();
  for (let start = 0; start < ids.length; start += window) {
    const chunk = ids.slice(start, start + window);
    const { capture } = model.forward(chunk, 1, model.newCache(1), true);
    capture!.routing.forEach((r, li) => {
      const s = capture!.slots[li];
      if (!r && !s) return;
      let l = layers.get(li);
      if (!l) {
        l = r ? emptyLayer(li, r.E, r.E) : emptyLayer(li, s!.numExperts, s!.numExperts + s!.extraExperts.length);
        layers.set(li, l);
      }
      if (r) appendRouting(l, r);
      else appendSlots(l, s!);
    });
    opts.onProgress?.(Math.min(ids.length, start + window), ids.length);
  }
  return { tokens: [...ids], layers: [...layers.values()].sort((a, b) => a.layer - b.layer), window };
}

/** Number of token positions in a trace. */
export function traceLength(tr: RoutingTrace): number {
  return tr.tokens.length;
}

/** Check a trace's shape (for traces read from JSON); throws with what is wrong. */
export function validateTrace(tr: RoutingTrace): void {
  const T = tr.tokens.length;
  for (const l of tr.layers) {
    if (l.offsets.length !== T + 1) throw new Error(`layer ${l.layer}: ${l.offsets.length} offsets for ${T} tokens`);
    if (l.experts.length !== l.gates.length || l.offsets[T] !== l.experts.length) throw new Error(`layer ${l.layer}: slot arrays disagree`);
    for (const e of l.experts) if (!Number.isInteger(e) || e < 0 || e >= l.numIds) throw new Error(`layer ${l.layer}: expert id ${e} outside 0..${l.numIds - 1}`);
  }
}
