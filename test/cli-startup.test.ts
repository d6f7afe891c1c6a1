/**
 * What the CLI loads at start-up: only the group of the command named on the command line
 * (every group for help or an unknown word), the store's migrations only when one is due,
 * and the account worker only the modules of its mode. Each lazy path must still behave as
 * the eager one did.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { COMMAND_GROUPS, commandNamed, preloadCommandGroup, registerCommands } from '../server/cli/command-table.js';
import { loadMigration, MIGRATIONS } from '../server/store/database.js';
import { makeExcluder } from '../server/engine/worker/excludes.js';
import { fromUtf8 } from '../server/util/byte-path.js';
import { CLI } from './support/cli.js';
import { bundleIsCurrent } from '../server/cli/bundle-choice.js';

const fresh = (): Command => new Command().exitOverride();

test('the command a command line names is its first word past the global options and their values', () => {
  assert.equal(commandNamed(['--data-dir', '/x', '--json', 'backup', '--job', 'j']), 'backup');
  assert.equal(commandNamed(['--as-account', 'backup', 'snapshot', 'list']), 'snapshot');
  assert.equal(commandNamed(['--owner', 'alice', '--data-dir=/x', 'job', 'list']), 'job');
  assert.equal(commandNamed(['--json']), undefined);
  assert.equal(commandNamed(['--help']), undefined);
  assert.equal(commandNamed(['--', 'restore']), 'restore');
});

test('each group of the command table registers exactly the top-level commands it lists', async () => {
  const all = COMMAND_GROUPS.flatMap((g) => g.commands);
  assert.equal(new Set(all).size, all.length, 'a command is in one group only');
  for (const g of COMMAND_GROUPS) {
    const program = fresh();
    (await g.load()).register(program);
    assert.deepEqual(program.commands.map((c) => c.name()), [...g.commands]);
  }
});

test('a named command loads only its group; help, none or an unknown word loads every group in order', async () => {
  const one = fresh();
  assert.deepEqual(await registerCommands(one, ['--data-dir', '/x', 'restore', '1']), ['restore', 'download']);
  assert.deepEqual(one.commands.map((c) => c.name()), ['restore', 'download']);
  for (const args of [[], ['--help'], ['help', 'backup'], ['bakcup']]) {
    const program = fresh();
    await registerCommands(program, args);
    assert.deepEqual(program.commands.map((c) => c.name()), COMMAND_GROUPS.flatMap((g) => g.commands));
  }
});

test('a command group loaded ahead of the command line (preloadCommandGroup) registers the same commands, once', async () => {
  for (const args of [['--data-dir', '/x', 'backup', '--job', 'j'], ['restore', '1'], [], ['bakcup']]) {
    preloadCommandGroup(args);
    const program = fresh();
    const listed = await registerCommands(program, args);
    assert.deepEqual(program.commands.map((c) => c.name()), listed);
    assert.equal(new Set(listed).size, listed.length);
  }
});

test('the CLI started with a command requests that command\'s modules before the command line\'s (a backup\'s start-up loaded them one after the other)', () => {
  // A loader hook (beside the main thread) notes the order in which the two modules' sources are
  // requested: it reads each file itself before handing the load on, since the loader's own reads
  // run in parallel and may finish in either order (a CI run under load saw them swapped).
  const hooks = `import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
export async function load(url, context, next) {
  const text = url.startsWith('file:') ? fs.readFileSync(fileURLToPath(url), 'utf8') : '';
  if (/\\.command\\(['"]backup['"]\\)/.test(text)) fs.writeSync(2, 'loaded:backup-group\\n');
  if (/await registerCommands\\(program/.test(text)) fs.writeSync(2, 'loaded:command-line\\n');
  return next(url, context);
}`;
  const preload = `import { register } from 'node:module'; register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hooks)}));`;
  const r = spawnSync(process.execPath, ['--no-warnings', '--import', `data:text/javascript,${encodeURIComponent(preload)}`, CLI, 'backup', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.stderr.match(/loaded:[a-z-]+/g), ['loaded:backup-group', 'loaded:command-line']);
});

test('tidemark --help still lists every command, and an unknown command is still refused with exit 2', () => {
  const help = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  for (const name of COMMAND_GROUPS.flatMap((g) => g.commands)) assert.match(help.stdout, new RegExp(`^  ${name}\\b`, 'm'));
  const typo = spawnSync(process.execPath, [CLI, '--data-dir', '/nonexistent-tidemark', 'bakcup'], { encoding: 'utf8' });
  assert.equal(typo.status, 2);
  assert.match(typo.stderr, /unknown command 'bakcup'/);
  const sub = spawnSync(process.execPath, [CLI, 'backup', '--help'], { encoding: 'utf8' });
  assert.equal(sub.status, 0);
  assert.match(sub.stdout, /--job <name>/);
});

test('the list of migrations is the migrations folder, and each module names itself as listed', async () => {
  const dir = new URL('../server/store/migrations/', import.meta.url);
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3)).sort();
  assert.deepEqual([...MIGRATIONS], files);
  for (const name of MIGRATIONS) assert.equal((await loadMigration(name)).name, name);
});

test('excludes still match as globs when picomatch is loaded on demand, and no glob excludes nothing', () => {
  const none = makeExcluder([]);
  assert.equal(none(fromUtf8('cache/x')), false);
  const ex = makeExcluder(['*.log', 'public_html/cache']);
  assert.equal(ex(fromUtf8('logs/error.log')), true);
  assert.equal(ex(fromUtf8('public_html/cache')), true);
  assert.equal(ex(fromUtf8('old/public_html/cache')), false);
  assert.equal(ex(fromUtf8('public_html/index.php')), false);
});

const BUNDLE = new URL('../server/bundle/', import.meta.url);

test('the CLI runs its bundle only when the bundle is not older than the compiled entry', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-bundle-'));
  try {
    const bundle = pathToFileURL(path.join(dir, 'tidemark.js'));
    const entry = pathToFileURL(path.join(dir, 'entry.js'));
    assert.equal(bundleIsCurrent(bundle, entry), false, 'neither exists');
    fs.writeFileSync(entry, '');
    assert.equal(bundleIsCurrent(bundle, entry), false, 'no bundle');
    fs.writeFileSync(bundle, '');
    fs.utimesSync(entry, 1000, 1000);
    fs.utimesSync(bundle, 1000, 1000);
    assert.equal(bundleIsCurrent(bundle, entry), true, 'made in the same second');
    fs.utimesSync(bundle, 2000, 2000);
    assert.equal(bundleIsCurrent(bundle, entry), true, 'newer');
    fs.utimesSync(entry, 3000, 3000);
    assert.equal(bundleIsCurrent(bundle, entry), false, 'stale: tsc ran after the bundle was made');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the build leaves a current bundle of the CLI and the worker, and the bundled CLI starts the bundled worker', () => {
  assert.equal(bundleIsCurrent(new URL('tidemark.js', BUNDLE), new URL('../server/cli/entry.js', import.meta.url)), true);
  const files = fs.readdirSync(BUNDLE).filter((f) => f.endsWith('.js'));
  const text = new Map(files.map((f) => [f, fs.readFileSync(new URL(f, BUNDLE), 'utf8')]));
  // The one module that finds a sibling entry of the bundle from its own URL.
  const spawning = files.filter((f) => text.get(f)!.includes('new URL("./account-worker.js", import.meta.url)'));
  assert.equal(spawning.length, 1);
  assert.ok(files.includes('account-worker.js'));
  // Every other import.meta.url is the compiled module's own, and that file exists.
  for (const [f, t] of text) {
    for (const m of t.matchAll(/new URL\(("[^"]+"), import\.meta\.url\)\.href/g)) {
      const original = new URL(JSON.parse(m[1]!) as string, new URL(f, BUNDLE));
      assert.ok(fs.existsSync(original), `${f}: ${original.href}`);
    }
  }
  const r = spawnSync(process.execPath, [CLI, 'backup', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

/** The bundle's files a file imports, statically or not (relative specifiers only). */
const bundleImports = (text: string): string[] => [...text.matchAll(/(?:from\s*|import\s*\(?\s*)"\.\/([\w-]+\.js)"/g)].map((m) => m[1]!);

/** Every bundle file reachable from an entry through its imports. */
function bundleGraph(entry: string): Set<string> {
  const seen = new Set<string>();
  const todo = [entry];
  for (let f = todo.pop(); f !== undefined; f = todo.pop()) {
    if (seen.has(f)) continue;
    seen.add(f);
    todo.push(...bundleImports(fs.readFileSync(new URL(f, BUNDLE), 'utf8')));
  }
  return seen;
}

test('the CLI and the worker are bundled apart: no file of the bundle is in both graphs (a module both use is no chunk of its own, loaded by both)', () => {
  const worker = bundleGraph('account-worker.js');
  const cli = bundleGraph('tidemark.js');
  assert.ok(worker.size > 1 && cli.size > 10, `${worker.size} ${cli.size}`);
  for (const f of worker) assert.ok(f === 'account-worker.js' || f.startsWith('worker-'), `the worker loads ${f}`);
  for (const f of cli) assert.ok(!worker.has(f), `${f} is in both graphs`);
});

test('the bundled worker starts in standby and ends when root goes away without naming an account', () => {
  const r = spawnSync(process.execPath, [fileURLToPath(new URL('account-worker.js', BUNDLE))], {
    input: '', encoding: 'utf8', stdio: ['pipe', 'ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH!, TIDEMARK_WORKER_STANDBY: '1' }, timeout: 20000,
  });
  assert.equal(r.status, 0, r.stderr);
});

test('the bundle carries the argument parser and the SQLite binding\'s JavaScript, and a command that opens the store runs through it', () => {
  const files = fs.readdirSync(BUNDLE).filter((f) => f.endsWith('.js'));
  for (const f of files) {
    const t = fs.readFileSync(new URL(f, BUNDLE), 'utf8');
    assert.doesNotMatch(t, /from\s*["'](commander|better-sqlite3)["']|import\(["'](commander|better-sqlite3)["']\)/, f);
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-bundle-store-'));
  try {
    fs.writeFileSync(path.join(dataDir, 'config.json'), JSON.stringify({ panel: 'standalone', homeRoots: ['/nonexistent-tidemark'] }));
    // A loader hook notes every module loaded from node_modules: neither package is.
    const hooks = `import fs from 'node:fs';
export async function load(url, context, next) {
  if (url.includes('/node_modules/')) fs.writeSync(2, 'loaded:' + url + '\\n');
  return next(url, context);
}`;
    const preload = `import { register } from 'node:module'; register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hooks)}));`;
    const run = (...a: string[]) => spawnSync(process.execPath, ['--no-warnings', '--import', `data:text/javascript,${encodeURIComponent(preload)}`, CLI, '--data-dir', dataDir, ...a], { encoding: 'utf8' });
    const added = run('destination', 'add', '--name', 'here', '--type', 'local', '--path', dataDir, '--force-insecure-path');
    assert.equal(added.status, 0, added.stderr);
    const listed = run('--json', 'destination', 'list');
    assert.equal(listed.status, 0, listed.stderr);
    assert.deepEqual((JSON.parse(listed.stdout) as { name: string }[]).map((d) => d.name), ['here']);
    assert.doesNotMatch(added.stderr + listed.stderr, /loaded:.*node_modules\/(commander|better-sqlite3)\//);
    const wrong = run('destination', 'add', '--name');
    assert.equal(wrong.status, 2, 'a missing option value is refused by the parser as before');
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
