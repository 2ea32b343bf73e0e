// Makes `npx switchyard` work inside this checkout: npx looks in node_modules/.bin, and npm does not link a
// package's own bin there. Links node_modules/.bin/switchyard → dist/src/cli/main.js.
import { mkdirSync, symlinkSync, rmSync, chmodSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';

const target = join('dist', 'src', 'cli', 'main.js');
if (!existsSync(target)) {
  console.error(`link-bin: ${target} is missing; build first`);
  process.exit(1);
}
chmodSync(target, 0o755);
const binDir = join('node_modules', '.bin');
mkdirSync(binDir, { recursive: true });
const link = join(binDir, 'switchyard');
rmSync(link, { force: true });
symlinkSync(relative(binDir, target), link);
