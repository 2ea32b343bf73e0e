// Runs every compiled test file under dist/test with node's built-in test runner.
// Node 20's `node --test` takes no globs, so the files are listed here.
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { sysrootRunner } from './mesa-coopmat.mjs';

const root = 'dist/test';
if (!existsSync(root)) {
  console.error('dist/test is missing: run `npm install` (or `npm run build`) first');
  process.exit(2);
}
const files = [];
const walk = (d) => {
  for (const name of readdirSync(d).sort()) {
    const p = join(d, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.js')) files.push(p);
  }
};
walk(root);
const filter = process.argv.slice(2);
const chosen = filter.length ? files.filter((f) => filter.some((s) => f.includes(s))) : files;

// The tensor-core (subgroup-matrix) tests need an adapter with subgroup matrices. With the Mesa 26 sysroot of
// scripts/mesa-coopmat.mjs present they run there only (below), where they must not skip; without it they run with
// the rest, for real where the adapter has subgroup matrices (a GPU) and reported as skipped elsewhere. CI's lavapipe
// (Mesa 25) has none, so CI must have the sysroot (.cache/mesa-coopmat; .ci/run fetches it).
const coopFiles = chosen.filter((f) => /[\\/]coop-[^\\/]*\.test\.js$/.test(f));
const runner = coopFiles.length ? sysrootRunner() : undefined;
const main = runner ? chosen.filter((f) => !coopFiles.includes(f)) : chosen;
let status = 0;
if (main.length) {
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...main], { stdio: 'inherit' });
  status = r.status ?? 1;
}

if (coopFiles.length && !runner) {
  const how = 'fetch it with `node scripts/mesa-coopmat.mjs`';
  if (process.env.CI) {
    console.error(`\nThe Mesa 26 sysroot for the tensor-core tests is missing: ${how}`);
    status = status || 1;
  } else {
    console.log(`\n# tensor-core tests: without an adapter with subgroup matrices they were skipped; ${how} to run them on lavapipe`);
  }
} else if (runner) {
  console.log(`\n# tensor-core tests on ${runner.info.mesa} lavapipe (${runner.dir})`);
  for (const f of coopFiles) {
    const [cmd, args] = runner.command(['--test-reporter=spec', f]);
    const c = spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, ...runner.env, SWITCHYARD_REQUIRE_SUBGROUP_MATRIX: '1' } });
    if (c.status !== 0) status = status || c.status || 1;
  }
}
process.exit(status);
