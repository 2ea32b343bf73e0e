/**
 * Files of a model folder that are not regular files (a FIFO, /dev/zero through a symlink, a folder) are refused
 * with one line naming the file, quickly: before this, a FIFO as config.json blocked the CLI forever and /dev/zero
 * was read until memory ran out. Every case that could hang runs the CLI as a child process with a timeout, so a
 * regression fails the test instead of blocking the suite.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync, closeSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES } from '../helpers/fixtures.js';
import { userError } from '../helpers/user-error.js';
import { readConfig } from '../../src/io/checkpoint.js';
import { loadTokenizer } from '../../src/io/tokenizer.js';
import { MAX_JSON_BYTES, readTextFile } from '../../src/io/read-file.js';

const CLI = join(process.cwd(), 'dist/src/cli/main.js');
const SRC = join(FIXTURES, 'qwen3_moe');
/** Far more than a refusal needs (~1 s to start node and load the CLI); a hang is killed at this point. */
const TIMEOUT_MS = 30_000;

type Special = 'fifo' | 'devzero';

function makeSpecial(path: string, kind: Special): void {
  if (kind === 'fifo') execFileSync('mkfifo', [path]);
  else symlinkSync('/dev/zero', path);
}

const KIND_RE: Record<Special, RegExp> = { fifo: /is not a regular file \(a FIFO\)/, devzero: /is not a regular file \(a character device\)/ };

/** A copy of the qwen3_moe fixture folder where `file` is replaced by a FIFO or a link to /dev/zero. */
function folderWith(root: string, file: string, kind: Special, extra: Record<string, string> = {}): string {
  const d = mkdtempSync(join(root, `${kind}-`));
  for (const f of ['config.json', 'model.safetensors']) if (f !== file) copyFileSync(join(SRC, f), join(d, f));
  for (const [f, text] of Object.entries(extra)) writeFileSync(join(d, f), text);
  makeSpecial(join(d, file), kind);
  return d;
}

function runCli(args: string[]): { code: number | null; err: string; out: string; signal: NodeJS.Signals | null } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: TIMEOUT_MS, env: { ...process.env, SWITCHYARD_THREADS: '1' } });
  return { code: r.status, err: r.stderr, out: r.stdout, signal: r.signal };
}

function assertRefused(r: ReturnType<typeof runCli>, file: string, re: RegExp): void {
  assert.equal(r.signal, null, `the CLI hung and was killed after ${TIMEOUT_MS} ms`);
  assert.equal(r.code, 2, `exit code (stderr: ${r.err})`);
  const lines = r.err.trim().split('\n').filter((l) => !/^loading/.test(l));
  assert.equal(lines.length, 1, `one line expected:\n${r.err}`);
  assert.match(lines[0]!, /^switchyard: error: /);
  assert.ok(lines[0]!.includes(file), `names ${file}: ${lines[0]}`);
  assert.match(lines[0]!, re);
  assert.equal(r.out, '');
}

describe('non-regular files in a model folder', () => {
  let root: string;
  before(() => { root = mkdtempSync(join(tmpdir(), 'sy-special-')); });
  after(() => rmSync(root, { recursive: true, force: true }));

  for (const kind of ['fifo', 'devzero'] as const) {
    it(`config.json as ${kind}: generate and inspect exit 2 with one line`, () => {
      const d = folderWith(root, 'config.json', kind);
      assertRefused(runCli(['generate', d, '--prompt-ids', '1,2', '--max-new-tokens', '1']), 'config.json', KIND_RE[kind]);
      assertRefused(runCli(['inspect', d]), 'config.json', KIND_RE[kind]);
    });

    it(`model.safetensors.index.json as ${kind}`, () => {
      const d = folderWith(root, 'model.safetensors.index.json', kind);
      assertRefused(runCli(['generate', d, '--prompt-ids', '1,2', '--max-new-tokens', '1']), 'model.safetensors.index.json', KIND_RE[kind]);
    });

    it(`model.safetensors as ${kind}`, () => {
      const d = folderWith(root, 'model.safetensors', kind);
      assertRefused(runCli(['generate', d, '--prompt-ids', '1,2', '--max-new-tokens', '1']), 'model.safetensors', KIND_RE[kind]);
    });

    it(`tokenizer.json as ${kind} (text prompt)`, () => {
      const d = folderWith(root, 'tokenizer.json', kind);
      assertRefused(runCli(['generate', d, '--prompt', 'hello', '--max-new-tokens', '1']), 'tokenizer.json', KIND_RE[kind]);
    });

    it(`tokenizer_config.json as ${kind}`, () => {
      // a minimal valid tokenizer.json, so only tokenizer_config.json can be the problem
      const tok = JSON.stringify({ version: '1.0', model: { type: 'WordLevel', vocab: { a: 0, '[UNK]': 1 }, unk_token: '[UNK]' }, pre_tokenizer: { type: 'Whitespace' } });
      const d = folderWith(root, 'tokenizer_config.json', kind, { 'tokenizer.json': tok });
      assertRefused(runCli(['generate', d, '--prompt', 'a', '--max-new-tokens', '1']), 'tokenizer_config.json', KIND_RE[kind]);
    });
  }

  it('a folder named config.json or tokenizer.json', () => {
    const d = mkdtempSync(join(root, 'dir-'));
    mkdirSync(join(d, 'config.json'));
    userError(() => readConfig(d), /config\.json is not a regular file \(a folder\)/);
    mkdirSync(join(d, 'tokenizer.json'));
    userError(() => loadTokenizer(d), /tokenizer\.json is not a regular file \(a folder\)/);
  });

  it('JSON files over the size cap are refused before they are read (sparse file: no disk used)', () => {
    const d = mkdtempSync(join(root, 'big-'));
    const p = join(d, 'config.json');
    closeSync(openSync(p, 'w'));
    truncateSync(p, MAX_JSON_BYTES + 1);
    userError(() => readConfig(d), new RegExp(`config\\.json is ${MAX_JSON_BYTES + 1} bytes, more than the ${MAX_JSON_BYTES}-byte limit`));
    // at the cap exactly it is read (and then fails as JSON: NUL bytes), showing the cap is the boundary
    truncateSync(p, 16);
    userError(() => readConfig(d), /config\.json is not valid JSON/);
  });

  it('null / array JSON as config.json or tokenizer.json is a UserError naming the file', () => {
    const d = mkdtempSync(join(root, 'null-'));
    for (const text of ['null', '[]', '7']) {
      writeFileSync(join(d, 'config.json'), text);
      userError(() => readConfig(d), /config\.json is not a JSON object/);
      writeFileSync(join(d, 'tokenizer.json'), text);
      userError(() => loadTokenizer(d), /tokenizer\.json is not a JSON object/);
    }
  });

  it('text files: the helper reads regular files and refuses a missing one with its name', () => {
    const d = mkdtempSync(join(root, 'text-'));
    writeFileSync(join(d, 'p.txt'), 'héllo');
    assert.equal(readTextFile(join(d, 'p.txt')), 'héllo');
    userError(() => readTextFile(join(d, 'missing.txt')), /cannot open .*missing\.txt: ENOENT/);
    userError(() => readTextFile(join(d, 'p.txt'), 3), /p\.txt is 6 bytes, more than the 3-byte limit/);
  });
});
