/**
 * Reverse-mode automatic differentiation: a `Var` is a value (float32 or float64 array + shape) that remembers the
 * op that made it, its parents, and how to push its gradient back to them. `backward(loss)` runs those closures in
 * reverse topological order. Gradients accumulate (+=) into `grad`, so a Var used twice gets both contributions.
 *
 * Precision follows the inputs: an op on float64 Vars produces float64 (finite-difference checks run in float64);
 * float32 is the training default and uses the WASM kernels.
 */
export type FArray = Float32Array | Float64Array;

let gradEnabled = true;

/** Run `fn` without recording the graph (evaluation, parameter updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

export class Var {
  grad: FArray | null = null;
  /** Set by ops; consumed by backward(). */
  backwardFn: (() => void) | null;
  readonly parents: readonly Var[];

  constructor(
    public data: FArray,
    public shape: readonly number[],
    public readonly requiresGrad = false,
    parents: readonly Var[] = [],
    backwardFn: (() => void) | null = null,
    readonly op = 'leaf',
    /** Parameter name (leaves), for optimizers, checkpoints and error messages. */
    public name = '',
  ) {
    let n = 1;
    for (const d of shape) n *= d;
    if (n !== data.length) throw new Error(`Var ${op}${name ? ` ${name}` : ''}: ${data.length} values for shape [${shape.join(', ')}]`);
    this.parents = parents;
    this.backwardFn = backwardFn;
  }

  get size(): number {
    return this.data.length;
  }

  get isF64(): boolean {
    return this.data instanceof Float64Array;
  }

  /** The gradient buffer, allocated (zeros) on first use. */
  g(): FArray {
    if (!this.grad) this.grad = alloc(this.data, this.data.length);
    return this.grad;
  }

  zeroGrad(): void {
    this.grad = null;
  }
}

/** A new zeroed array of the same precision as `like`. */
export function alloc(like: FArray, n: number): FArray {
  return like instanceof Float64Array ? new Float64Array(n) : new Float32Array(n);
}

/** A trainable leaf. */
export function param(data: FArray, shape: readonly number[], name = ''): Var {
  return new Var(data, shape, true, [], null, 'param', name);
}

/** A leaf that needs no gradient. */
export function constant(data: FArray, shape: readonly number[], name = ''): Var {
  return new Var(data, shape, false, [], null, 'const', name);
}

/**
 * Build an op's output. If no parent needs a gradient (or grad is disabled) the graph is not recorded.
 * `backward` reads `out.grad` and accumulates into the parents' `g()`.
 */
export function result(op: string, data: FArray, shape: readonly number[], parents: readonly Var[], backward: (out: Var) => void): Var {
  const track = gradEnabled && parents.some((p) => p.requiresGrad);
  if (!track) return new Var(data, shape, false, [], null, op);
  const out: Var = new Var(data, shape, true, parents, null, op);
  out.backwardFn = () => backward(out);
  return out;
}

/** Reverse-mode sweep from a scalar (or seeded) output. Frees the graph as it goes. */
export function backward(root: Var, seed?: FArray): void {
  if (!root.requiresGrad) throw new Error('backward: the output does not depend on anything that requires a gradient');
  if (!seed && root.size !== 1) throw new Error(`backward: output has ${root.size} elements; pass a seed gradient`);
  if (seed && seed.length !== root.size) throw new Error(`backward: seed has ${seed.length} elements, output ${root.size}`);
  const order: Var[] = [];
  const seen = new Set<Var>();
  // Iterative post-order DFS (graphs are deep: layers × ops).
  const stack: [Var, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [v, i] = top;
    if (i < v.parents.length) {
      top[1] = i + 1;
      const p = v.parents[i]!;
      if (p.requiresGrad && !seen.has(p)) { seen.add(p); stack.push([p, 0]); }
    } else {
      order.push(v);
      stack.pop();
    }
  }
  const g = root.g();
  if (seed) g.set(seed);
  else g[0] = 1;
  for (let i = order.length - 1; i >= 0; i--) {
    const v = order[i]!;
    if (v.backwardFn && v.grad) {
      v.backwardFn();
      v.backwardFn = null;
      // Intermediate gradients are not needed once pushed to the parents (leaves keep theirs).
      if (v !== root) v.grad = null;
    }
  }
}
