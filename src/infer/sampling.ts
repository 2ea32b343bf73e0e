/** Next-token selection: greedy, or temperature + top-p (nucleus) sampling from a seeded PRNG. */

export interface SamplingOptions {
  /** 0 (default) = greedy. */
  temperature?: number;
  /** Nucleus: keep the smallest set of tokens whose probability reaches topP (default 1 = all). */
  topP?: number;
  /** Keep only the topK most likely tokens (0 = no limit). */
  topK?: number;
  seed?: number;
}

/** mulberry32: small, fast, seedable. */
export function makeRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function argmax(row: ArrayLike<number>, offset = 0, n = row.length - offset): number {
  let best = 0;
  let bv = -Infinity;
  for (let i = 0; i < n; i++) if (row[offset + i]! > bv) { bv = row[offset + i]!; best = i; }
  return best;
}

export class Sampler {
  private rng: () => number;
  constructor(private opts: SamplingOptions = {}) {
    this.rng = makeRng(opts.seed ?? 0);
  }

  /** Pick a token from logits[offset .. offset + V). */
  next(logits: Float32Array, offset: number, V: number): number {
    const temp = this.opts.temperature ?? 0;
    if (temp <= 0) return argmax(logits, offset, V);
    const idx = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[offset + b]! - logits[offset + a]!);
    const limit = this.opts.topK && this.opts.topK > 0 ? Math.min(this.opts.topK, V) : V;
    const m = logits[offset + idx[0]!]!;
    const p = new Float64Array(limit);
    let z = 0;
    for (let i = 0; i < limit; i++) { p[i] = Math.exp((logits[offset + idx[i]!]! - m) / temp); z += p[i]!; }
    const topP = this.opts.topP ?? 1;
    let keep = limit;
    let acc = 0;
    for (let i = 0; i < limit; i++) { acc += p[i]! / z; if (acc >= topP) { keep = i + 1; break; } }
    let zk = 0;
    for (let i = 0; i < keep; i++) zk += p[i]!;
    let r = this.rng() * zk;
    for (let i = 0; i < keep; i++) { r -= p[i]!; if (r <= 0) return idx[i]!; }
    return idx[keep - 1]!;
  }
}
