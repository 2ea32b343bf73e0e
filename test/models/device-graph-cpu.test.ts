/**
 * The device graph (src/models/device-causal-lm.ts) on the CPU ops (src/backend/cpu/cpu-ops.ts), against every HF
 * fixture: this checks the graph itself (weight names, routing, MLA assembly, cache) apart from any GPU kernel.
 * Tolerance 1e-4 absolute on logits, as for the CPU CausalLM (float32 accumulation errs ~1e-6 at these widths).
 */
import { deviceFixtureSuite } from '../helpers/device-fixture-suite.js';
import { CpuOps } from '../../src/backend/cpu/cpu-ops.js';

deviceFixtureSuite({ label: 'device graph on cpu ops', logitTol: 1e-4, ops: async () => new CpuOps() });
