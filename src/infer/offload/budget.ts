/** `--memory-budget` values: bytes as an integer, optionally with a binary suffix (K, M, G, T; KB/KiB/MB/MiB... too). */
import { UserError } from '../../util/errors.js';

const UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

export function parseBytes(s: string, flag = '--memory-budget'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(s);
  if (!m) throw new UserError(`${flag} must be a byte count like 123456789, 512M or 2G, got "${s}"`);
  const v = Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
  if (!Number.isSafeInteger(v) || v <= 0) throw new UserError(`${flag} must be a positive byte count, got "${s}"`);
  return v;
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}
