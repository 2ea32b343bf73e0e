/**
 * The model shipped with Switchyard (trained by Switchyard itself; see models/default/README.md), used when a
 * command gets no model folder. Located relative to this module, so it works from a checkout or an installed package.
 */
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** dist/src/models/default-model.js → <package root>/models/default */
export function defaultModelDir(): string {
  return fileURLToPath(new URL('../../../models/default', import.meta.url));
}

/** True when `arg` names a model folder (a directory with config.json). */
export function isModelDir(arg: string): boolean {
  try {
    return statSync(arg).isDirectory() && existsSync(join(arg, 'config.json'));
  } catch {
    return false;
  }
}
