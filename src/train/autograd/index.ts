/** The autograd API: Vars, backward, and every differentiable op. */
export * from './var.js';
export * from './ops/linear.js';
export * from './ops/elementwise.js';
export * from './ops/reduce.js';
export * from './ops/shape.js';
export * from './ops/norm.js';
export * from './ops/rope.js';
export * from './ops/attention.js';
export * from './ops/softmax.js';
export * from './ops/embedding.js';
