/** A dense float32 tensor in row-major order. Activations are always Tensors. */
export class Tensor {
  readonly data: Float32Array;
  readonly shape: readonly number[];

  constructor(data: Float32Array, shape: readonly number[]) {
    const n = numel(shape);
    if (data.length !== n) throw new Error(`tensor data has ${data.length} elements but shape [${shape.join(', ')}] needs ${n}`);
    this.data = data;
    this.shape = shape;
  }

  static zeros(shape: readonly number[]): Tensor {
    return new Tensor(new Float32Array(numel(shape)), shape);
  }

  get size(): number {
    return this.data.length;
  }

  /** Same data, new shape (element count must match). */
  reshape(shape: readonly number[]): Tensor {
    return new Tensor(this.data, shape);
  }

  /** Rows [start, end) of the leading dimension, as a view. */
  rows(start: number, end: number): Tensor {
    const inner = this.size / this.shape[0]!;
    return new Tensor(this.data.subarray(start * inner, end * inner), [end - start, ...this.shape.slice(1)]);
  }
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
