/** `switchyard generate --memory-budget`: same continuation as the resident model, offload statistics on stderr. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { FIXTURES } from '../../helpers/fixtures.js';

const MAIN = 'dist/src/cli/main.js';
const gen = (...extra: string[]): ReturnType<typeof spawnSync> =>
  spawnSync(process.execPath, [MAIN, 'generate', join(FIXTURES, 'qwen3_moe-fused'), '--prompt-ids', '1,2,3', '--max-new-tokens', '6', ...extra], { encoding: 'utf8' });

describe('generate --memory-budget', () => {
  it('prints the resident continuation and the cache statistics, for every policy', () => {
    const ref = gen();
    assert.equal(ref.status, 0, String(ref.stderr));
    for (const p of ['lru', 'lfu', 'prefetch', 'none']) {
      const r = gen('--memory-budget', '40K', '--offload-policy', p);
      assert.equal(r.status, 0, String(r.stderr));
      assert.equal(r.stdout, ref.stdout);
      assert.match(String(r.stderr), new RegExp(`offload \\(${p}, budget 40\\.0 KiB of .* hit rate`));
    }
  });
  it('rejects bad budgets and policies', () => {
    assert.match(String(gen('--memory-budget', 'lots').stderr), /--memory-budget must be a byte count/);
    assert.match(String(gen('--memory-budget', '1K').stderr), /smaller than one expert/);
    assert.match(String(gen('--memory-budget', '1G', '--offload-policy', 'fifo').stderr), /--offload-policy must be one of/);
    assert.match(String(gen('--offload-policy', 'lru').stderr), /needs --memory-budget/);
  });
});
