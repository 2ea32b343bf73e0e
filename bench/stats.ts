/** Small helpers shared by the benchmarks: medians, seeded inputs, writing a results file. */
import { mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../src/io/atomic-write.js';

export const median = (a: readonly number[]): number => {
  const s = [...a].sort((p, q) => p - q);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** xorshift32 stream of inputs uniform in [-1, 1) (a fresh stream per seed). */
export function randomInput(n: number, seed: number): Float32Array {
  const x = new Float32Array(n);
  let s = (seed * 747796405 + 1) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    x[i] = (s >>> 8) / 8388608 - 1; // uniform [-1, 1)
  }
  return x;
}

/** Write a benchmark's results as JSON (its folder created, the file replaced atomically) and say where. */
export function writeResults(file: string, json: unknown, indent = 2): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileAtomic(file, JSON.stringify(json, null, indent) + '\n');
  console.log(`wrote ${file}`);
}

/** The machine a results file was measured on. */
export function machineInfo(): { cpu?: string; cpus: number; node: string; platform: string; arch: string } {
  return { cpu: cpus()[0]?.model, cpus: cpus().length, node: process.version, platform: process.platform, arch: process.arch };
}
