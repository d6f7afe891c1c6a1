// Bundles the compiled CLI and account worker (dist/server) into dist/server/bundle/: the
// entries tidemark.js and account-worker.js and the chunks they load (each command group,
// each worker mode stays a chunk loaded on demand). Node's ES module loader costs every
// command and worker start something for each file it loads (resolved, read through libuv's
// pool, compiled, linked), and each start paid it for each of ~120 modules before the bundle.
// server/cli/main.ts runs the bundle when it is current.
// The packages in node_modules stay outside (native addons, lazily loaded SDKs).
//
// The CLI and the worker are two builds, each splitting only its own graph (the worker's chunks
// are named worker-*): built together, every module both use (politeness, close-fd, entry
// format, ...) became a chunk of its own, shared by the two, so that a backup of an empty
// account loaded 52 files in root and 16 in the worker, 42 and 7 built apart, for the same
// bytes; the CPU of root and worker together went 801 -> 765 ms (median of 15 interleaved
// pairs on the loaded 2-core machine, perf stat, lower in 14; another set 610 -> 557, 13 of 14). The
// two processes never share a module instance, so a module in both bundles is no second copy
// of any state.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const server = fileURLToPath(new URL('../dist/server/', import.meta.url));
const outdir = path.join(server, 'bundle');

/**
 * Modules whose `import.meta.url` names a sibling entry of the bundle, and so must stay the
 * bundle file's own URL: spawn-worker starts `./account-worker.js`, which in the bundle is the
 * bundled worker. Every other module's `import.meta.url` is made its compiled file's URL
 * again, so that the paths it finds from it (views, native addons, config-schema.js) are the
 * same as unbundled.
 */
const SIBLING_RELATIVE = new Set(['engine/worker/spawn-worker.js']);

const ownUrls = {
  name: 'own-import-meta-url',
  setup(build) {
    build.onLoad({ filter: /\.js$/ }, (args) => {
      const rel = path.relative(server, args.path);
      let text = fs.readFileSync(args.path, 'utf8');
      if (!rel.startsWith('..') && !SIBLING_RELATIVE.has(rel)) {
        const fromBundle = path.relative(outdir, args.path).split(path.sep).join('/');
        text = text.replaceAll('import.meta.url', `new URL(${JSON.stringify(fromBundle)}, import.meta.url).href`);
      }
      return { contents: text, loader: 'js' };
    });
  },
};

/**
 * The packages bundled with the code (the others stay in node_modules, above): the CLI's
 * argument parser and the store's SQLite binding (its JavaScript; the addon it loads stays
 * in node_modules, named by store/sqlite-binding.ts). Every command loaded them as about 20
 * CommonJS files, each resolved, read, scanned for its exports and compiled on its own.
 */
const BUNDLED_PACKAGES = new Set(['commander', 'better-sqlite3']);

const externalPackages = {
  name: 'external-packages',
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith('node:')) return { path: args.path, external: true };
      const name = args.path.startsWith('@') ? args.path.split('/').slice(0, 2).join('/') : args.path.split('/')[0];
      return BUNDLED_PACKAGES.has(name) ? undefined : { path: args.path, external: true };
    });
  },
};

fs.rmSync(outdir, { recursive: true, force: true });
const options = {
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  plugins: [externalPackages, ownUrls],
  // The bundled CommonJS packages call require() (Node's built-ins, their own addon).
  banner: { js: "import { createRequire as __tmCreateRequire } from 'node:module'; const require = __tmCreateRequire(import.meta.url);" },
  logLevel: 'warning',
};
await Promise.all([
  esbuild.build({ ...options, entryPoints: { tidemark: path.join(server, 'cli/entry.js') }, chunkNames: 'chunk-[hash]' }),
  esbuild.build({ ...options, entryPoints: { 'account-worker': path.join(server, 'engine/worker/account-worker.js') }, chunkNames: 'worker-[hash]' }),
]);
