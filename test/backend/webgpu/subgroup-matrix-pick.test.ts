/**
 * Choosing the tensor-core fragment from an adapter's subgroup-matrix configurations (pickSubgroupMatrix in gpu.ts):
 * the lists below are the ones Dawn reports on the H100 (../shared/README.md) and on Mesa 26's lavapipe.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pickSubgroupMatrix } from '../../../src/backend/webgpu/gpu.js';

const cfg = (componentType: string, resultComponentType: string, M: number, N: number, K: number) => ({ componentType, resultComponentType, M, N, K });

const H100 = [
  cfg('f16', 'f16', 16, 16, 16), cfg('f16', 'f32', 16, 16, 16), cfg('f16', 'f16', 16, 8, 16), cfg('f16', 'f32', 16, 8, 16),
  cfg('f16', 'f32', 16, 8, 8), cfg('i8', 'i32', 16, 16, 32), cfg('u8', 'u32', 16, 8, 32),
];
const LAVAPIPE = [cfg('f16', 'f16', 8, 8, 8), cfg('f16', 'f32', 8, 8, 8), cfg('u8', 'u32', 8, 8, 8), cfg('i8', 'i32', 8, 8, 8)];

test('the largest f16 → f32 fragment is chosen, with the subgroup size', () => {
  assert.deepEqual(pickSubgroupMatrix(H100, 32, 32), { m: 16, n: 16, k: 16, subgroupSize: 32 });
  assert.deepEqual(pickSubgroupMatrix(LAVAPIPE, 8, 8), { m: 8, n: 8, k: 8, subgroupSize: 8 });
  // Without 16×16×16, the next shape the kernels have.
  assert.deepEqual(pickSubgroupMatrix(H100.filter((c) => c.N !== 16), 32, 32), { m: 16, n: 8, k: 16, subgroupSize: 32 });
});

test('no usable fragment: f16 results only, integer only, unsupported sizes, varying or oversized subgroups', () => {
  assert.equal(pickSubgroupMatrix([cfg('f16', 'f16', 16, 16, 16)], 32, 32), undefined);
  assert.equal(pickSubgroupMatrix([cfg('i8', 'i32', 16, 16, 32)], 32, 32), undefined);
  assert.equal(pickSubgroupMatrix([cfg('f16', 'f32', 32, 32, 8)], 32, 32), undefined);
  assert.equal(pickSubgroupMatrix(H100, 16, 32), undefined);
  assert.equal(pickSubgroupMatrix(H100, 128, 128), undefined);
  assert.equal(pickSubgroupMatrix([], 32, 32), undefined);
});
