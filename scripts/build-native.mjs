// Builds the native addon (native/module.c with peercred.c: the kernel's SO_PEERCRED for the
// bridge socket; file-times.c: nanosecond times for restores; syncfs.c: syncfs(2), which flushes
// a destination after a backup) with the node-gyp that npm bundles, and puts it at
// dist/server/native/tidemark.node, where
// the application loads it and from where the installer copies it with dist/server.
// Run by `npm run build` (not an install script, so `npm ci --ignore-scripts` gets it too).
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const native = path.join(repo, 'native');
const outDir = path.join(repo, 'dist', 'server', 'native');
const addons = ['tidemark'];

function nodeGyp() {
  const candidates = [process.env.npm_config_node_gyp];
  // npm's own copy, beside the npm that runs this (or the one next to this node).
  for (const npm of [process.env.npm_execpath, path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js')]) {
    if (npm) candidates.push(path.join(path.dirname(path.dirname(npm)), 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  }
  return candidates.find((c) => c && fs.existsSync(c));
}

/** The headers of the running Node.js when they are installed with it: no download needed. */
function nodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = path.dirname(path.dirname(process.execPath));
  return fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined;
}

const gyp = nodeGyp();
if (!gyp) {
  process.stderr.write('build-native: node-gyp was not found (it comes with npm); the panel bridge and restores need native/ built\n');
  process.exit(1);
}
const dir = nodeDir();
const r = spawnSync(process.execPath, [gyp, 'rebuild', '--loglevel=error', ...(dir ? [`--nodedir=${dir}`] : [])], { cwd: native, stdio: ['ignore', 'ignore', 'inherit'] });
if (r.status !== 0) {
  process.stderr.write('build-native: building native/ failed (a C compiler, make and python3 are needed)\n');
  process.exit(1);
}
fs.mkdirSync(outDir, { recursive: true });
for (const name of addons) {
  const out = path.join(outDir, `${name}.node`);
  // A new file renamed over the old one: a process that has the old one loaded (a worker of a
  // running backup or restore) keeps its own copy; written over in place, it died of SIGSEGV.
  const tmp = `${out}.${process.pid}.tmp`;
  fs.copyFileSync(path.join(native, 'build', 'Release', `${name}.node`), tmp);
  fs.renameSync(tmp, out);
  // It must load in this Node.js.
  createRequire(import.meta.url)(out);
}
