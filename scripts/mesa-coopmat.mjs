// Fetches a private copy of Mesa 26's lavapipe (software Vulkan) with everything it links against, for testing the
// tensor-core (subgroup-matrix) kernels without a GPU: lavapipe implements VK_KHR_cooperative_matrix since Mesa 26
// (8×8×8 f16 fragments), and Dawn then offers `chromium-experimental-subgroup-matrix`. Debian 12's Mesa (22, or 25
// from bookworm-backports) has no cooperative matrices, and Mesa 26 is only built for Debian 13 (trixie-backports),
// whose glibc is newer than Debian 12's — so it is not installed but unpacked into a sysroot (.cache/mesa-coopmat by
// default), and the tests run node through that sysroot's own dynamic loader (scripts/run-tests.mjs does this).
//
// Everything is verified: the suites' InRelease files with gpgv against the system's Debian archive keyring, the
// Packages indexes and every .deb against the SHA-256 sums those list. Idempotent: exits at once when the sysroot
// is complete. Usage: node scripts/mesa-coopmat.mjs [dir]    (needs gpgv, xz and dpkg-deb)
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';

const MIRROR = process.env.SWITCHYARD_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const ROOTS = [['trixie-backports', 'mesa-vulkan-drivers'], ['trixie', 'libvulkan1']];
// Packages a shared library never needs at run time (maintainer-script and base-system dependencies).
const SKIP = new Set(['debconf', 'debconf-2.0', 'libc-bin', 'dpkg', 'perl-base', 'base-files', 'usrmerge', 'install-info']);

export function sysrootDir(dir) { return resolve(dir ?? process.env.SWITCHYARD_MESA_COOPMAT ?? '.cache/mesa-coopmat'); }

/** How to run node under the sysroot, or undefined when it has not been fetched. */
export function sysrootRunner(dir) {
  const d = sysrootDir(dir);
  if (!existsSync(join(d, 'ok.json'))) return undefined;
  const lib = join(d, 'root/usr/lib/x86_64-linux-gnu');
  return {
    dir: d,
    info: JSON.parse(readFileSync(join(d, 'ok.json'), 'utf8')),
    // ld.so --library-path L node …: node and Dawn resolve every library (libc included) inside the sysroot.
    command: (nodeArgs) => [join(lib, 'ld-linux-x86-64.so.2'), ['--library-path', `${lib}:${join(d, 'root/lib/x86_64-linux-gnu')}`, process.execPath, ...nodeArgs]],
    env: { VK_DRIVER_FILES: join(d, 'lvp_icd.json'), VK_ICD_FILENAMES: join(d, 'lvp_icd.json') },
  };
}

function fail(msg) {
  console.error(`mesa-coopmat: ${msg}`);
  process.exit(1);
}

async function get(url) {
  const r = await fetch(url);
  if (!r.ok) fail(`${url}: HTTP ${r.status}`);
  return Buffer.from(await r.arrayBuffer());
}

const sha256 = (b) => createHash('sha256').update(b).digest('hex');

function run(cmd, args, input) {
  const r = spawnSync(cmd, args, { input, maxBuffer: 1 << 30 });
  if (r.error) fail(`${cmd} could not run (${r.error.message}); install it (Debian: ${cmd === 'gpgv' ? 'gpgv' : cmd === 'xz' ? 'xz-utils' : 'dpkg'})`);
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} failed: ${r.stderr.toString().trim().split('\n').pop()}`);
  return r.stdout;
}

/** Verified Packages stanzas of one suite: name → fields. */
async function suitePackages(suite, tmp) {
  const inRelease = await get(`${MIRROR}/dists/${suite}/InRelease`);
  const f = join(tmp, `${suite}.InRelease`);
  writeFileSync(f, inRelease);
  run('gpgv', ['--keyring', KEYRING, f]);
  const text = inRelease.toString();
  const sums = text.slice(text.indexOf('\nSHA256:'));
  const m = sums.match(/^ ([0-9a-f]{64})\s+\d+\s+main\/binary-amd64\/Packages\.xz$/m);
  if (!m) fail(`${suite}: InRelease lists no main/binary-amd64/Packages.xz`);
  const xz = await get(`${MIRROR}/dists/${suite}/main/binary-amd64/Packages.xz`);
  if (sha256(xz) !== m[1]) fail(`${suite}: Packages.xz does not match its SHA-256 in InRelease`);
  const pk = new Map();
  for (const stanza of run('xz', ['-dc'], xz).toString().split('\n\n')) {
    const fields = {};
    for (const line of stanza.split('\n')) {
      const i = line.indexOf(':');
      if (i > 0 && line[0] !== ' ') fields[line.slice(0, i)] = line.slice(i + 1).trim();
    }
    if (fields.Package && !pk.has(fields.Package)) pk.set(fields.Package, fields);
  }
  return pk;
}

async function main() {
  if (process.arch !== 'x64' || process.platform !== 'linux') fail(`only linux x64 is supported (this is ${process.platform} ${process.arch})`);
  const dir = sysrootDir(process.argv[2]);
  if (existsSync(join(dir, 'ok.json'))) {
    console.log(`mesa-coopmat: ${dir} is ready (${JSON.parse(readFileSync(join(dir, 'ok.json'), 'utf8')).mesa})`);
    return;
  }
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, 'root'), { recursive: true });
  const suites = {};
  for (const suite of new Set(ROOTS.map(([s]) => s).concat('trixie'))) suites[suite] = await suitePackages(suite, tmp);
  // Dependency closure: each root from the suite it was asked from; dependencies (the first alternative that exists)
  // from trixie-backports when it has them — a backported Mesa may need a backported library (a newer LLVM, libdrm)
  // — else from trixie. Both are built against trixie, so the mix is what a trixie system with backports would get.
  const chosen = new Map();
  const queue = ROOTS.map(([s, p]) => [s, p]);
  while (queue.length) {
    const [suite, name] = queue.shift();
    if (chosen.has(name) || SKIP.has(name)) continue;
    const pkg = suites[suite].get(name) ?? suites['trixie-backports'].get(name) ?? suites.trixie.get(name);
    if (!pkg) fail(`package ${name} is in neither trixie-backports nor trixie`);
    chosen.set(name, pkg);
    for (const dep of [pkg['Pre-Depends'], pkg.Depends].filter(Boolean).join(', ').split(/,\s*/)) {
      const alts = dep.split('|').map((a) => a.trim().split(/[\s:(]/)[0]).filter(Boolean);
      if (alts.length === 0) continue;
      const pick = alts.find((a) => SKIP.has(a) || suites['trixie-backports'].has(a) || suites.trixie.has(a));
      if (pick === undefined) fail(`${name} depends on ${dep}, which neither trixie-backports nor trixie has`);
      if (!SKIP.has(pick)) queue.push([suites['trixie-backports'].has(pick) ? 'trixie-backports' : 'trixie', pick]);
    }
  }
  let bytes = 0;
  for (const [name, pkg] of chosen) {
    const deb = await get(`${MIRROR}/${pkg.Filename}`);
    if (sha256(deb) !== pkg.SHA256) fail(`${pkg.Filename} does not match its SHA-256 in the Packages index`);
    const f = join(tmp, `${name}.deb`);
    writeFileSync(f, deb);
    run('dpkg-deb', ['-x', f, join(tmp, 'root')]);
    rmSync(f);
    bytes += deb.length;
    process.stdout.write(process.stdout.isTTY ? `\rmesa-coopmat: ${chosen.size} packages, ${(bytes / 2 ** 20).toFixed(0)} MiB` : '');
  }
  if (process.stdout.isTTY) process.stdout.write('\n');
  const lvp = join(dir, 'root/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so');
  if (!existsSync(join(tmp, 'root/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so'))) fail('mesa-vulkan-drivers holds no libvulkan_lvp.so');
  // The ICD file names the driver by absolute path inside the sysroot (the packaged one says just the file name).
  writeFileSync(join(tmp, 'lvp_icd.json'), JSON.stringify({ file_format_version: '1.0.1', ICD: { library_path: lvp, api_version: '1.4.0' } }, null, 2));
  const mesa = `Mesa ${chosen.get('mesa-vulkan-drivers').Version}`;
  writeFileSync(join(tmp, 'ok.json'), JSON.stringify({ mesa, packages: [...chosen.values()].map((p) => `${p.Package} ${p.Version}`), bytes }, null, 2));
  for (const suite of Object.keys(suites)) rmSync(join(tmp, `${suite}.InRelease`));
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  console.log(`mesa-coopmat: ${mesa} lavapipe and ${chosen.size - 1} libraries (${(bytes / 2 ** 20).toFixed(0)} MiB of packages) in ${dir}`);
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('mesa-coopmat.mjs')) await main();
