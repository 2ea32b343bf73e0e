// Bundles the browser entry (src/browser.ts) into dist/browser/switchyard.js: one ESM file for a web page, WebGPU
// through navigator.gpu. Fails when anything Node-only ends up in the bundle: a `node:` module (or a bare Node
// builtin such as 'fs') or the `webgpu` npm package (Dawn for Node; src/backend/webgpu/gpu.ts imports it through a
// variable specifier so bundlers never see it). The error names the chain of imports that pulled it in.
//
// Run by `npm run build:browser` (and `npm run build`, after build:ts). Also exported as buildBrowser() for tests.
import { builtinModules } from 'node:module';
import { mkdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const ENTRY = 'src/browser.ts';
export const OUT = 'dist/browser/switchyard.js';

const builtins = new Set(builtinModules.flatMap((m) => [m, m.split('/')[0]]));
const isNodeOnly = (spec) => spec.startsWith('node:') || builtins.has(spec) || spec === 'webgpu' || spec.startsWith('webgpu/');

/** The import chain entry → … → file, from the edges seen so far (first importer of each file). */
function chain(parents, file, dir) {
  const out = [relative(dir, file)];
  for (let f = parents.get(file); f && out.length < 50; f = parents.get(f)) out.unshift(relative(dir, f));
  return out.join(' → ');
}

/** Refuses Node-only modules, naming the chain of imports that reached them. */
function guard(dir) {
  /** resolved file → the first file that imported it */
  const parents = new Map();
  return {
    name: 'switchyard-browser-guard',
    setup(build) {
      build.onResolve({ filter: /.*/ }, async (args) => {
        if (args.pluginData?.inner) return undefined;
        if (args.kind !== 'entry-point' && isNodeOnly(args.path)) {
          return { errors: [{ text: `Node-only module '${args.path}' in the browser bundle: ${chain(parents, args.importer, dir)} → ${args.path}` }] };
        }
        if (args.kind === 'entry-point') return undefined;
        // Resolve as esbuild would, to record who first imported each file.
        const r = await build.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: { inner: true } });
        if (r.errors.length) return undefined; // esbuild reports it
        if (r.path && !parents.has(r.path)) parents.set(r.path, args.importer);
        return { path: r.path, external: r.external, sideEffects: r.sideEffects, namespace: r.namespace, suffix: r.suffix };
      });
    },
  };
}

/** Bundle; throws (with the offending import chain) when the browser graph pulls in anything Node-only. */
export async function buildBrowser({ dir = root, entry = ENTRY, outfile = OUT, quiet = false } = {}) {
  mkdirSync(dirname(join(dir, outfile)), { recursive: true });
  const result = await esbuild.build({
    absWorkingDir: dir,
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    sourcemap: true,
    metafile: true,
    logLevel: 'silent',
    plugins: [guard(dir)],
  }).catch((e) => {
    const msgs = (e.errors ?? []).map((m) => `${m.location ? `${m.location.file}:${m.location.line}: ` : ''}${m.text}`);
    throw new Error(`browser build failed:\n  ${msgs.join('\n  ') || String(e)}`);
  });
  // Belt and braces: nothing from node_modules/webgpu, no `node:` specifier left as an external import.
  const inputs = Object.keys(result.metafile.inputs);
  const bad = inputs.filter((p) => /(^|\/)node_modules\/webgpu\//.test(p));
  const outImports = Object.values(result.metafile.outputs).flatMap((o) => o.imports.map((i) => i.path));
  bad.push(...outImports.filter(isNodeOnly));
  if (bad.length) throw new Error(`browser build pulled in Node-only modules: ${bad.join(', ')}`);
  const bytes = Object.values(result.metafile.outputs).find((o) => o.entryPoint)?.bytes ?? 0;
  if (!quiet) {
    console.log(`${outfile}: ${(bytes / 1024).toFixed(0)} KiB from ${inputs.length} modules`);
    for (const w of result.warnings) console.warn(`warning: ${w.text}`);
  }
  return { out: join(dir, outfile), inputs, bytes, warnings: result.warnings };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  buildBrowser().catch((e) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(1);
  });
}
