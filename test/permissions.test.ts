import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import Database from 'better-sqlite3';
import { asAccount, createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { CLI, cli, makeDataDir, makeDestinationDir, ok, type CliResult } from './support/cli.js';
import { WebClient, pathParam } from './support/web-daemon.js';

let homeRoot: string;
let a: TestAccount;
let b: TestAccount;
let dataDir: string;
let destDir: string;
const snaps: Record<string, string> = {};

const config = (extra: Record<string, unknown>, port = 0): void => {
  fs.writeFileSync(path.join(dataDir, 'config.json'), JSON.stringify({
    panel: 'standalone', homeRoots: [homeRoot], httpPort: port, socketPath: path.join(dataDir, 'run', 'tidemark.sock'), logLevel: 'silent', ...extra,
  }));
};
const as = (acct: TestAccount, args: string[]): CliResult => cli(dataDir, ['--as-account', acct.username, ...args]);
const refused = (r: CliResult, message: string | RegExp): void => {
  assert.equal(r.code, 1, `expected a refusal, got exit ${r.code}: ${r.stdout}${r.stderr}`);
  if (typeof message === 'string') assert.equal(r.json?.error, message);
  else assert.match(r.json?.error ?? '', message);
};
const read = (acct: TestAccount, file: string): string => fs.readFileSync(path.join(acct.home, file), 'utf8');
const taskCount = (): number => {
  const db = new Database(path.join(dataDir, 'tidemark.sqlite'), { readonly: true });
  try { return (db.prepare('SELECT count(*) AS n FROM tasks').get() as { n: number }).n; } finally { db.close(); }
};
const freePort = (): Promise<number> => new Promise((resolve) => {
  const srv = net.createServer().listen(0, '127.0.0.1', () => { const { port } = srv.address() as net.AddressInfo; srv.close(() => resolve(port)); });
});

before(() => {
  homeRoot = makeHomeRoot();
  a = createAccount(homeRoot);
  b = createAccount(homeRoot);
  for (const acct of [a, b]) asAccount(acct, `printf 'version 1' > page.html`);
  dataDir = makeDataDir({});
  config({});
  destDir = makeDestinationDir();
  ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
  ok(cli(dataDir, ['job', 'add', '--name', 'nightly', '--destination', 'disk', '--structure', 'incremental', '--items', 'files', '--accounts', `${a.username},${b.username}`]));
  for (const r of ok(cli(dataDir, ['backup', '--job', 'nightly', '--wait'])).results) snaps[r.account] = r.snapshot;
  for (const acct of [a, b]) asAccount(acct, `printf 'version 2' > page.html`);
});

after(() => {
  for (const acct of [a, b]) if (acct) removeAccount(acct);
  for (const d of [homeRoot, dataDir, destDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

test('by default an account holder restores and downloads its own files', () => {
  config({});
  const out = path.join(dataDir, 'a-default.tar.gz');
  ok(as(a, ['download', snaps[a.username]!, '--path', 'page.html', '--out', out]));
  assert.ok(fs.statSync(out).size > 0);
  ok(as(a, ['restore', snaps[a.username]!, '--path', 'page.html', '--into-folder', '--wait']));
});

test('on the CLI with --as-account, a disabled action is refused and nothing happens', () => {
  config({ permissions: { user: { restoreFiles: false, download: false } } });
  const tasks = taskCount();
  refused(as(a, ['restore', snaps[a.username]!, '--path', 'page.html', '--wait']), 'the provider does not allow this account to restore files');
  assert.equal(read(a, 'page.html'), 'version 2');
  assert.equal(taskCount(), tasks, 'no task was started');
  const out = path.join(dataDir, 'a.tar.gz');
  refused(as(a, ['download', snaps[a.username]!, '--path', 'page.html', '--out', out]), 'the provider does not allow this account to download from snapshots');
  assert.ok(!fs.existsSync(out) && !fs.existsSync(`${out}.part`));
  // The provider itself is never limited by them.
  ok(cli(dataDir, ['restore', snaps[a.username]!, '--path', 'page.html', '--wait']));
  assert.equal(read(a, 'page.html'), 'version 1');
  asAccount(a, `printf 'version 2' > page.html`);
});

test('a per-account override wins over the role default, both ways', () => {
  config({ permissions: { user: { restoreFiles: false }, accounts: { [b.username]: { restoreFiles: true }, [a.username]: { download: false } } } });
  refused(as(a, ['restore', snaps[a.username]!, '--path', 'page.html', '--wait']), /not allow this account to restore files/);
  assert.equal(read(a, 'page.html'), 'version 2');
  ok(as(b, ['restore', snaps[b.username]!, '--path', 'page.html', '--wait']));
  assert.equal(read(b, 'page.html'), 'version 1');
  refused(as(a, ['download', snaps[a.username]!, '--path', 'page.html', '--out', path.join(dataDir, 'x.tar.gz')]), /not allow this account to download/);
  ok(as(b, ['download', snaps[b.username]!, '--path', 'page.html', '--out', path.join(dataDir, 'b.tar.gz')]));
});

test('own destinations follow accountDestinations.enabled, which wins; an override can still turn them off for one account', () => {
  const sshArgs = ['destination', 'add', '--name', 'mine', '--type', 'ssh', '--host', '127.0.0.1', '--port', '1', '--user', 'x', '--password-file', '/dev/null', '--path', '/x'];
  config({ permissions: { accounts: { [a.username]: { ownDestinations: true } } } });
  refused(as(a, sshArgs), 'the provider does not allow account-level destinations');
  config({ accountDestinations: { enabled: true }, permissions: { accounts: { [a.username]: { ownDestinations: false, ownJobs: false } } } });
  refused(as(a, sshArgs), 'the provider does not allow this account to add destinations of its own');
  // b passes the permission and meets the next rule.
  refused(as(b, [...sshArgs.slice(0, 5), 'local', '--path', '/tmp']), /cannot add a local destination/);
  refused(as(a, ['job', 'add', '--name', 'mine', '--destination', 'disk', '--structure', 'archive']), 'the provider does not allow this account to add or run backup jobs of its own');
  config({ permissions: { user: { ownDestinations: true } } });
  refused(cli(dataDir, ['job', 'list']), /permissions\.user\.ownDestinations: set accountDestinations\.enabled instead/);
});

test('on the user pages a disabled action is not offered, and a forged request is refused (403) and does nothing', async () => {
  const port = await freePort();
  config({ permissions: { user: { restoreFiles: false, restoreDatabases: false, download: false }, accounts: { [b.username]: { restoreFiles: true, download: true } } } }, port);
  let daemon: ChildProcess | null = null;
  try {
    daemon = spawn(process.execPath, [CLI, '--data-dir', dataDir, 'serve'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      try { if ((await fetch(`${base}/api/v1/health`)).ok) break; } catch { /* not up yet */ }
      if (i > 200) throw new Error('the daemon did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    const db = new Database(path.join(dataDir, 'tidemark.sqlite'), { readonly: true });
    const destId = (db.prepare(`SELECT id FROM destinations WHERE name = 'disk'`).get() as { id: number }).id;
    db.close();
    const page = (acct: TestAccount): string => `/snapshots/${destId}/${acct.username}/${snaps[acct.username]}`;
    const signIn = async (acct: TestAccount): Promise<WebClient> => {
      const c = new WebClient(base);
      const url = ok(cli(dataDir, ['login-url', '--user', acct.username, '--role', 'user'])).url as string;
      assert.equal((await c.get(url)).status, 200);
      return c;
    };

    const alice = await signIn(a);
    const shown = await alice.get(page(a));
    assert.equal(shown.status, 200);
    assert.match(shown.body, /page\.html/);
    assert.doesNotMatch(shown.body, /name="mode"/, 'no restore buttons');
    assert.doesNotMatch(shown.body, /\/download"/, 'no download button');
    const csrf = await alice.csrf();
    const tasks = taskCount();
    for (const mode of ['place', 'folder']) {
      const r = await alice.post(`${page(a)}/restore`, { _csrf: csrf, mode, path: pathParam('page.html') });
      assert.equal(r.status, 403, mode);
    }
    const dl = await alice.post(`${page(a)}/download`, { _csrf: csrf, path: pathParam('page.html') });
    assert.equal(dl.status, 403);
    assert.notEqual(dl.headers.get('content-type'), 'application/gzip');
    assert.equal(read(a, 'page.html'), 'version 2');
    assert.equal(taskCount(), tasks, 'no task was started');
    assert.deepEqual(fs.readdirSync(a.home).filter((n) => n.startsWith('tidemark-restore-')).length, 1, 'only the folder of the first test');

    // b's override allows both: the buttons are there and work.
    const bob = await signIn(b);
    const bPage = await bob.get(page(b));
    assert.match(bPage.body, /name="mode" value="place"/);
    assert.match(bPage.body, /\/download"/);
    const got = await bob.post(`${page(b)}/download`, { _csrf: await bob.csrf(), path: pathParam('page.html') });
    assert.equal(got.status, 200);
    // One file downloads as itself.
    assert.equal(got.headers.get('content-type'), 'application/octet-stream');
    assert.match(got.headers.get('content-disposition') ?? '', /filename="page\.html"/);
  } finally {
    if (daemon && daemon.exitCode === null) {
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon!.once('exit', r));
    }
    config({});
  }
});
