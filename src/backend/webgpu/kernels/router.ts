/**
 * Fused MoE router on the GPU: router logits [T, E] (computed by a linear kernel elsewhere) → for each token the k
 * chosen expert ids (i32 [T, k]) and their gate weights (f32 [T, k]), in one dispatch and with no readback. It
 * reproduces the inference routers of src/moe/routers/ exactly — same scores, same selection rule, same order of the
 * k chosen experts, same masking values and renormalisation:
 *
 *   softmax-topk          p = softmax(logits); top-k of p; gates = p (÷ Σ p_top when normTopK).           (softmax-topk.ts)
 *   topk-softmax          top-k of the logits; gates = softmax over the k chosen logits.                  (topk-softmax.ts)
 *   sigmoid-group-topk    DeepSeek-V3: s = σ(logits); choice = s + correction bias; group score = sum of the 2 largest
 *                         choices; keep topkGroup groups, others' choice := 0.0 (not −∞); top-k; gates = s (÷ (Σ s +
 *                         1e-20) in f32 when normTopK) × scaling.                                        (sigmoid-group-topk.ts)
 *   group-limited-greedy  DeepSeek-V2: p = softmax; optionally group max → keep topkGroup groups, others' p := 0.0;
 *                         top-k; gates = the (masked) p (÷ (Σ + 1e-20) when normTopK) × scaling.        (group-limited-greedy.ts)
 *   sparsemixer           Phi-MoE top-2 (eval): argmax, then argmax without it; each gate is 1 / Σ exp(v − v_sel) over
 *                         the logits within relative distance 2·jitterEps of v_sel.                      (sparsemixer.ts)
 *
 * Selection is `topkIndices` of src/backend/cpu/softmax.ts: k passes of an argmax over the not-yet-taken entries, a
 * later entry winning only when strictly greater (so ties go to the lower index), the k ids in descending order; the
 * taken set is a private bitmask. Group selection uses the same rule on the group scores.
 *
 * Layout: one invocation per token (workgroups of 64 threads along tokens, folded into a 2-D grid past 65535
 * workgroups). Each invocation keeps its row of scores in private arrays sized to E rounded up to 32 — O(k·E) work
 * per token, which is nothing next to the expert GEMMs.
 *
 * Numerics: the CPU routers compute exponentials and the softmax sum in float64 and round to f32. Here everything is
 * f32, made close to that: exp is a Cephes-style range-reduced polynomial (≈1 ulp, instead of the WGSL builtin's
 * 3 + 2|x| ulp bound), the difference x − m it is taken of is carried exactly (TwoSum, the rounding error is added
 * after range reduction), and the sums that are float64 on the CPU are Neumaier-compensated; the sums the CPU does in
 * f32 (DeepSeek renormalisation, top-2 group scores) are plain f32 adds in the CPU's order, so they agree bit for bit
 * given equal inputs. Gates agree to a few ulp (≤ 1e-6 relative in the tests). Expert ids agree exactly unless two
 * scores are within a few ulp of each other without being equal (exact ties — e.g. equal logits — do break the same
 * way), and except for softmax probabilities below the f32 normal range (|x − max| > 87), which the GPU may flush
 * to zero where the CPU keeps a subnormal.
 *
 * Limits: 1 ≤ k ≤ 16, k ≤ E ≤ 256; sparsemixer needs k = 2; grouped kinds need E divisible by nGroup and
 * topkGroup ≤ nGroup (as the CPU routers check). The correction bias of sigmoid-group-topk is an f32 [E] weight
 * (absent = zeros). Logits are assumed finite.
 */
import type { GpuContext, GpuTensor } from '../context.js';
import { numelOf, Params } from '../context.js';
import type { GpuWeight } from '../weights.js';
import type { RouterSpec } from '../../../moe/routers/router.js';
import { cdiv, memoCode, grid2d } from '../wgsl.js';

/** The inference router rules the GPU runs (the RouterSpec kinds of the same names; extra fields are ignored). */
export type GpuRouterSpec =
  | { kind: 'softmax-topk'; normTopK: boolean }
  | { kind: 'topk-softmax' }
  | { kind: 'sigmoid-group-topk'; nGroup: number; topkGroup: number; normTopK: boolean; scaling: number }
  | { kind: 'group-limited-greedy'; nGroup: number; topkGroup: number; method: 'greedy' | 'group_limited_greedy'; normTopK: boolean; scaling: number }
  | { kind: 'sparsemixer'; jitterEps: number };

/** Largest expert count and top-k the router kernel handles. */
export const GPU_ROUTER_MAX_E = 256;
export const GPU_ROUTER_MAX_K = 16;

const WG = 64;

/** Whether `routeGpu` implements this router kind (the research routers of zoo.ts are CPU/trainable only). */
export function gpuRouterSupported(spec: RouterSpec): boolean {
  switch (spec.kind) {
    case 'softmax-topk':
    case 'topk-softmax':
    case 'sigmoid-group-topk':
    case 'group-limited-greedy':
    case 'sparsemixer':
      return true;
    default:
      return false;
  }
}

/** f32 exp of (hi + lo) to about 1 ulp: Cephes expf range reduction and polynomial, lo added after the reduction. */
const EXP_WGSL = `
fn exp_acc(hi: f32, lo: f32) -> f32 {
  if (hi < -104.0) { return 0.0; }
  let x = min(hi, 88.5);
  let n = floor(x * 1.44269504088896341 + 0.5);
  var r = x - n * 0.693359375;
  r = r + n * 2.12194440e-4;
  r = r + lo;
  let z = r * r;
  var y = 1.9875691500e-4;
  y = y * r + 1.3981999507e-3;
  y = y * r + 8.3334519073e-3;
  y = y * r + 4.1665795894e-2;
  y = y * r + 1.6666665459e-1;
  y = y * r + 5.0000001201e-1;
  y = y * z + r + 1.0;
  return ldexp(y, i32(n));
}

// exp(a - b) with the difference carried exactly (TwoSum of a and -b).
fn exp_diff(a: f32, b: f32) -> f32 {
  let d = a - b;
  let bb = d - a;
  let lo = (a - (d - bb)) + (-b - bb);
  return exp_acc(d, lo);
}

// Neumaier-compensated running sum: acc = (sum, compensation).
fn kadd(acc: vec2<f32>, v: f32) -> vec2<f32> {
  let s = acc.x + v;
  var c = acc.y;
  if (abs(acc.x) >= abs(v)) { c += (acc.x - s) + v; } else { c += (v - s) + acc.x; }
  return vec2<f32>(s, c);
}

// 1 / (1 + exp(-x)), without overflowing exp.
fn sigmoid_acc(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp_acc(-x, 0.0)); }
  let e = exp_acc(x, 0.0);
  return e / (1.0 + e);
}
`;

/** Private-array selection helpers: topkIndices over sc[0..n) into sel[0..k), and group keeping over gsc. */
function selectWgsl(NE: number, withGroups: boolean): string {
  const NW = NE / 32;
  const groups = withGroups
    ? `
var<private> gsc: array<f32, ${NE}>;
var<private> gkeep: array<u32, ${NW}>;

fn group_kept(g: u32) -> bool { return (gkeep[g >> 5u] & (1u << (g & 31u))) != 0u; }

// Keep the 'keep' best of nG groups by gsc (topkIndices rule), then zero sc of every expert in a dropped group.
fn mask_groups(E: u32, nG: u32, keep: u32) {
  for (var w = 0u; w < ${NW}u; w++) { gkeep[w] = 0u; }
  for (var j = 0u; j < keep; j++) {
    var best = -1;
    var bv = 0.0;
    for (var g = 0u; g < nG; g++) {
      let v = gsc[g];
      if ((best < 0 || v > bv) && !group_kept(g)) { bv = v; best = i32(g); }
    }
    let b = u32(best);
    gkeep[b >> 5u] |= 1u << (b & 31u);
  }
  let size = E / nG;
  for (var e = 0u; e < E; e++) {
    if (!group_kept(e / size)) { sc[e] = 0.0; }
  }
}`
    : '';
  return `
var<private> sc: array<f32, ${NE}>;
var<private> sel: array<u32, ${GPU_ROUTER_MAX_K}>;
var<private> used: array<u32, ${NW}>;

fn is_used(i: u32) -> bool { return (used[i >> 5u] & (1u << (i & 31u))) != 0u; }

// topkIndices: k passes of argmax over the untaken entries; strictly greater wins, so ties go to the lower index.
fn topk(n: u32, k: u32) {
  for (var w = 0u; w < ${NW}u; w++) { used[w] = 0u; }
  for (var j = 0u; j < k; j++) {
    var best = -1;
    var bv = 0.0;
    for (var i = 0u; i < n; i++) {
      let v = sc[i];
      if ((best < 0 || v > bv) && !is_used(i)) { bv = v; best = i32(i); }
    }
    let b = u32(best);
    sel[j] = b;
    used[b >> 5u] |= 1u << (b & 31u);
  }
}
${groups}`;
}

/** sc[0..E) = softmax of the token's logits (f32 exp of exact differences, compensated sum). */
const SOFTMAX_WGSL = `
fn softmax_row(base: u32, E: u32) {
  var m = logits[base];
  for (var e = 1u; e < E; e++) { m = max(m, logits[base + e]); }
  var acc = vec2<f32>(0.0, 0.0);
  for (var e = 0u; e < E; e++) {
    let v = exp_diff(logits[base + e], m);
    sc[e] = v;
    acc = kadd(acc, v);
  }
  let s = acc.x + acc.y;
  for (var e = 0u; e < E; e++) { sc[e] = sc[e] / s; }
}`;

const PARAMS_WGSL = `
struct P { T: u32, E: u32, k: u32, nGroup: u32, topkGroup: u32, rowStride: u32, scaling: f32, twoEps: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> logits: array<f32>;`;

function outputs(first: number): string {
  return `@group(0) @binding(${first}) var<storage, read_write> experts: array<i32>;
@group(0) @binding(${first + 1}) var<storage, read_write> gates: array<f32>;`;
}

const HEAD = `@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x + gid.y * p.rowStride;
  if (t >= p.T) { return; }
  let E = p.E;
  let k = p.k;
  let base = t * E;
  let ob = t * k;`;

function routerCodeUncached(spec: GpuRouterSpec, NE: number, hasBias: boolean): string {
  switch (spec.kind) {
    case 'softmax-topk': {
      const gate = spec.normTopK
        ? `  var acc = vec2<f32>(0.0, 0.0);
  for (var j = 0u; j < k; j++) { acc = kadd(acc, sc[sel[j]]); }
  let sum = acc.x + acc.y;
  for (var j = 0u; j < k; j++) { experts[ob + j] = i32(sel[j]); gates[ob + j] = sc[sel[j]] / sum; }`
        : `  for (var j = 0u; j < k; j++) { experts[ob + j] = i32(sel[j]); gates[ob + j] = sc[sel[j]]; }`;
      return `${PARAMS_WGSL}
${outputs(2)}
${EXP_WGSL}
${selectWgsl(NE, false)}
${SOFTMAX_WGSL}
${HEAD}
  softmax_row(base, E);
  topk(E, k);
${gate}
}`;
    }
    case 'topk-softmax':
      return `${PARAMS_WGSL}
${outputs(2)}
${EXP_WGSL}
${selectWgsl(NE, false)}
var<private> ex: array<f32, ${GPU_ROUTER_MAX_K}>;
${HEAD}
  for (var e = 0u; e < E; e++) { sc[e] = logits[base + e]; }
  topk(E, k);
  let m = sc[sel[0]];
  var acc = vec2<f32>(0.0, 0.0);
  for (var j = 0u; j < k; j++) {
    let v = exp_diff(sc[sel[j]], m);
    ex[j] = v;
    acc = kadd(acc, v);
  }
  let sum = acc.x + acc.y;
  for (var j = 0u; j < k; j++) { experts[ob + j] = i32(sel[j]); gates[ob + j] = ex[j] / sum; }
}`;
    case 'sigmoid-group-topk': {
      const biasDecl = hasBias ? `@group(0) @binding(2) var<storage, read> bias: array<f32>;` : '';
      const choice = hasBias ? 's + bias[e]' : 's';
      return `${PARAMS_WGSL}
${biasDecl}
${outputs(hasBias ? 3 : 2)}
${EXP_WGSL}
${selectWgsl(NE, true)}
var<private> gv: array<f32, ${NE}>;

// Sum of the two largest of sc[start .. start + size) (the one value when size is 1), as the CPU's top2Sum.
fn top2_sum(start: u32, size: u32) -> f32 {
  var a = sc[start];
  var b = 0.0;
  var hasB = false;
  for (var i = 1u; i < size; i++) {
    let v = sc[start + i];
    if (v > a) { b = a; a = v; hasB = true; } else if (!hasB || v > b) { b = v; hasB = true; }
  }
  if (size == 1u) { return a; }
  return a + b;
}
${HEAD}
  for (var e = 0u; e < E; e++) {
    let s = sigmoid_acc(logits[base + e]);
    gv[e] = s;
    sc[e] = ${choice};
  }
  let size = E / p.nGroup;
  for (var g = 0u; g < p.nGroup; g++) { gsc[g] = top2_sum(g * size, size); }
  mask_groups(E, p.nGroup, p.topkGroup);
  topk(E, k);
  var sum = 0.0;
  for (var j = 0u; j < k; j++) { sum = sum + gv[sel[j]]; }
  let denom = sum + 1e-20;
  for (var j = 0u; j < k; j++) {
    var g = gv[sel[j]];
    ${spec.normTopK ? 'g = g / denom;' : ''}
    experts[ob + j] = i32(sel[j]);
    gates[ob + j] = g * p.scaling;
  }
}`;
    }
    case 'group-limited-greedy': {
      const limited = spec.method === 'group_limited_greedy';
      return `${PARAMS_WGSL}
${outputs(2)}
${EXP_WGSL}
${selectWgsl(NE, limited)}
${SOFTMAX_WGSL}
${HEAD}
  softmax_row(base, E);
${limited ? `  let size = E / p.nGroup;
  for (var g = 0u; g < p.nGroup; g++) {
    var m = sc[g * size];
    for (var i = 1u; i < size; i++) { m = max(m, sc[g * size + i]); }
    gsc[g] = m;
  }
  mask_groups(E, p.nGroup, p.topkGroup);` : ''}
  topk(E, k);
  var sum = 0.0;
  for (var j = 0u; j < k; j++) { sum = sum + sc[sel[j]]; }
  let denom = sum + 1e-20;
  for (var j = 0u; j < k; j++) {
    var g = sc[sel[j]];
    ${spec.normTopK ? 'g = g / denom;' : ''}
    experts[ob + j] = i32(sel[j]);
    gates[ob + j] = g * p.scaling;
  }
}`;
    }
    case 'sparsemixer':
      return `${PARAMS_WGSL}
${outputs(2)}
${EXP_WGSL}

// 1 / Σ exp(v − v_sel) over the experts other than 'excluded' whose relative distance below v_sel is ≤ 2·eps.
fn masked_softmax_at(base: u32, E: u32, s: u32, excluded: u32) -> f32 {
  let thr = logits[base + s];
  var acc = vec2<f32>(0.0, 0.0);
  for (var e = 0u; e < E; e++) {
    if (e == excluded) { continue; }
    let v = logits[base + e];
    let factor = max(abs(v), thr);
    // factor == 0 only when v == thr == 0, where the CPU's 0/0 compares false: kept.
    if (factor > 0.0 && (thr - v) / factor > p.twoEps) { continue; }
    acc = kadd(acc, exp_diff(v, thr));
  }
  return 1.0 / (acc.x + acc.y);
}
${HEAD}
  var e1 = 0u;
  for (var e = 1u; e < E; e++) { if (logits[base + e] > logits[base + e1]) { e1 = e; } }
  var e2 = select(0u, 1u, e1 == 0u);
  for (var e = 0u; e < E; e++) { if (e != e1 && logits[base + e] > logits[base + e2]) { e2 = e; } }
  experts[ob] = i32(e1);
  experts[ob + 1u] = i32(e2);
  gates[ob] = masked_softmax_at(base, E, e1, 0xffffffffu);
  gates[ob + 1u] = masked_softmax_at(base, E, e2, e1);
}`;
  }
}

function checkSpec(spec: GpuRouterSpec, E: number, k: number): { nGroup: number; topkGroup: number } {
  const name = spec.kind;
  if (!Number.isInteger(E) || E < 1 || E > GPU_ROUTER_MAX_E) throw new Error(`routeGpu ${name}: E = ${E} outside 1..${GPU_ROUTER_MAX_E}`);
  if (!Number.isInteger(k) || k < 1 || k > GPU_ROUTER_MAX_K) throw new Error(`routeGpu ${name}: k = ${k} outside 1..${GPU_ROUTER_MAX_K}`);
  if (k > E) throw new Error(`routeGpu ${name}: top-k ${k} > ${E} experts`);
  if (spec.kind === 'sparsemixer') {
    if (k !== 2) throw new Error(`routeGpu sparsemixer: defined for top-2 only (k = ${k})`);
    if (E < 2) throw new Error(`routeGpu sparsemixer: needs at least 2 experts, got ${E}`);
  }
  const grouped = spec.kind === 'sigmoid-group-topk' || (spec.kind === 'group-limited-greedy' && spec.method === 'group_limited_greedy');
  if (spec.kind === 'sigmoid-group-topk' || spec.kind === 'group-limited-greedy') {
    const nGroup = Math.max(1, spec.nGroup);
    const topkGroup = Math.max(1, spec.topkGroup);
    if (grouped) {
      if (E % nGroup !== 0) throw new Error(`routeGpu ${name}: ${E} experts do not split into ${nGroup} groups`);
      if (topkGroup > nGroup) throw new Error(`routeGpu ${name}: topk_group ${topkGroup} > n_group ${nGroup}`);
    }
    return { nGroup, topkGroup };
  }
  return { nGroup: 1, topkGroup: 1 };
}

/**
 * Route T tokens on the GPU: logits f32 [T, E] → experts i32 [T, k] (descending score, ties to the lower id) and
 * gates f32 [T, k]. `bias` is the DeepSeek-V3 correction bias (f32 [E], sigmoid-group-topk only; absent = zeros).
 * The returned tensors are the caller's to release.
 */
export function routeGpu(
  ctx: GpuContext, logits: GpuTensor, T: number, E: number, k: number, spec: GpuRouterSpec, bias?: GpuWeight,
): { experts: GpuTensor; gates: GpuTensor } {
  const { nGroup, topkGroup } = checkSpec(spec, E, k);
  if (logits.dtype !== 'f32') throw new Error(`routeGpu: logits must be f32, got ${logits.dtype}`);
  if (numelOf(logits.shape) < T * E) throw new Error(`routeGpu: logits [${logits.shape}] hold fewer than T·E = ${T * E} values`);
  const useBias = spec.kind === 'sigmoid-group-topk' && bias !== undefined;
  if (bias && spec.kind !== 'sigmoid-group-topk') throw new Error(`routeGpu ${spec.kind}: takes no correction bias`);
  if (useBias && bias) {
    if (bias.dtype !== 'f32') throw new Error(`routeGpu: correction bias ${bias.name} must be f32, got ${bias.dtype}`);
    if (numelOf(bias.shape) !== E) throw new Error(`routeGpu: correction bias ${bias.name} has shape [${bias.shape}], expected [${E}]`);
  }
  const experts = ctx.tensor([T, k], 'i32');
  const gates = ctx.tensor([T, k], 'f32');
  if (T === 0) return { experts, gates };

  const NE = Math.max(32, Math.ceil(E / 32) * 32);
  const code = routerCode(spec, NE, useBias);
  const groups = cdiv(T, WG);
  const [gx, gy] = grid2d(groups);
  const scaling = spec.kind === 'sigmoid-group-topk' || spec.kind === 'group-limited-greedy' ? spec.scaling : 1;
  const twoEps = spec.kind === 'sparsemixer' ? 2 * spec.jitterEps : 0;
  const params = new Params().u32(T).u32(E).u32(k).u32(nGroup).u32(topkGroup).u32(gx * WG).f32(scaling).f32(twoEps);
  const bindings = useBias && bias ? [logits, bias.buffer, experts, gates] : [logits, experts, gates];
  ctx.run(code, params, bindings, [gx, gy]);
  return { experts, gates };
}

// Generated WGSL memoised per configuration (see memoCode).
const routerCode = memoCode(routerCodeUncached);
