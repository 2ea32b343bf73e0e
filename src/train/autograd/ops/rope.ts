/** Rotary embeddings (a fixed rotation per position: backward applies the inverse rotation). */
import { Var } from '../var.js';
import type { RopeTable } from '../../../nn/rope.js';
const todo = (n: string): never => { throw new Error(`autograd op ${n} not implemented yet`); };

/**
 * x viewed as [T, H, headDim]; rotates dims [offset, offset + 2·table.invFreq.length) of each head at the given
 * positions (layout per table.interleaved), like nn/rope.ts `rope()` does in place for inference.
 */
export function rope(x: Var, table: RopeTable, H: number, headDim: number, positions: ArrayLike<number>, offset = 0): Var {
  return todo('rope' + x.op + String(table) + H + headDim + positions.length + offset);
}
