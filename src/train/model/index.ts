/** The trainable model: parameters, modules, TrainableLM, Hugging Face export. */
export * from './params.js';
export * from './rng.js';
export * from './ops.js';
export * from './config.js';
export * from './norm.js';
export * from './ffn.js';
export * from './experts.js';
export * from './gqa-attention.js';
export * from './mla-attention.js';
export * from './moe-block.js';
export * from './aux-loss.js';
export * from './trainable-lm.js';
export * from './export.js';
