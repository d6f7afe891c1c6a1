import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import Database from 'better-sqlite3';
import { asAccount, createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { CLI, cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';
import { fetchOnFreshSocket } from './support/fetch.js';

let homeRoot: string;
let a: TestAccount;
let b: TestAccount;
let dataDir: string;
let destDir: string;
let otherDir: string;
let base: string;
let socketPath: string;
let daemon: ChildProcess;
let daemonOutput = '';
let admin: string;
const tokens: string[] = [];

const freePort = (): Promise<number> => new Promise((resolve) => {
  const srv = net.createServer().listen(0, '127.0.0.1', () => { const { port } = srv.address() as net.AddressInfo; srv.close(() => resolve(port)); });
});

interface Answer { status: number; json: any; body: Buffer; headers: Headers }

async function call(method: string, url: string, token: string | null, body?: unknown): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetchOnFreshSocket(base + url, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const buf = Buffer.from(await res.arrayBuffer());
  let json: unknown = null;
  try { json = JSON.parse(buf.toString('utf8')); } catch { json = null; }
  return { status: res.status, json, body: buf, headers: res.headers };
}
const get = (url: string, token: string | null = admin) => call('GET', url, token);
const post = (url: string, body: unknown = {}, token: string | null = admin) => call('POST', url, token, body);

function newToken(args: string[]): string {
  const doc = ok(cli(dataDir, ['api-token', 'create', ...args]));
  tokens.push(doc.token);
  return doc.token as string;
}

async function waitForTask(id: number, token = admin): Promise<any> {
  for (let i = 0; i < 300; i++) {
    const t = await get(`/api/v1/tasks/${id}`, token);
    assert.equal(t.status, 200, JSON.stringify(t.json));
    if (t.json.finished) return t.json;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`task ${id} did not finish`);
}

before(async () => {
  homeRoot = makeHomeRoot();
  a = createAccount(homeRoot);
  b = createAccount(homeRoot);
  asAccount(a, `mkdir -p site && printf 'version 1' > site/index.html`);
  asAccount(b, `printf 'of b' > b.txt`);
  dataDir = makeDataDir({});
  destDir = makeDestinationDir();
  otherDir = makeDestinationDir();
  const port = await freePort();
  socketPath = path.join(dataDir, 'run', 'tidemark.sock');
  fs.writeFileSync(path.join(dataDir, 'config.json'), JSON.stringify({
    panel: 'standalone', homeRoots: [homeRoot], httpPort: port, socketPath, logLevel: 'trace',
    permissions: { accounts: { [b.username]: { download: false } } },
  }));
  ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
  admin = newToken(['--name', 'automation']);
  daemon = spawn(process.execPath, [CLI, '--data-dir', dataDir, 'serve'], { stdio: ['ignore', 'pipe', 'pipe'] });
  daemon.stdout!.on('data', (d) => { daemonOutput += d; });
  daemon.stderr!.on('data', (d) => { daemonOutput += d; });
  base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try { if ((await fetch(`${base}/api/v1/health`)).ok && fs.existsSync(socketPath)) break; } catch { /* not up yet */ }
    if (i > 200 || daemon.exitCode !== null) throw new Error(`the daemon did not start: ${daemonOutput}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(async () => {
  if (daemon && daemon.exitCode === null) {
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
  }
  for (const acct of [a, b]) if (acct) removeAccount(acct);
  for (const d of [homeRoot, dataDir, destDir, otherDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

describe('tokens', () => {
  test('no, malformed, unknown, revoked or expired token: 401 with nothing else said', async () => {
    const revoked = newToken(['--name', 'old']);
    const expired = newToken(['--name', 'short', '--expires', '1']);
    assert.equal((await get('/api/v1/destinations', revoked)).status, 200);
    ok(cli(dataDir, ['api-token', 'revoke', 'old']));
    const db = new Database(path.join(dataDir, 'tidemark.sqlite'));
    db.prepare(`UPDATE api_tokens SET expires_at = ? WHERE name = 'short'`).run(Date.now() - 1000);
    db.close();
    for (const [what, token] of [['none', null], ['garbage', 'not a token'], ['unknown', `tmk_${'A'.repeat(43)}`], ['revoked', revoked], ['expired', expired]] as const) {
      for (const url of ['/api/v1/destinations', '/api/v1/snapshots', '/api/v1/jobs', '/api/v1/tasks/1']) {
        const r = await get(url, token);
        assert.equal(r.status, 401, `${what} ${url}`);
        assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="tidemark"');
        assert.deepEqual(r.json, { error: 'a valid API token is required (Authorization: Bearer <token>)' });
      }
    }
    // A session-style header or cookie is no substitute.
    const r = await fetch(`${base}/api/v1/destinations`, { headers: { cookie: `tidemark_session=${admin}`, authorization: `Basic ${Buffer.from(`root:${admin}`).toString('base64')}` } });
    assert.equal(r.status, 401);
    const list = ok(cli(dataDir, ['api-token', 'list']));
    const byName = Object.fromEntries(list.map((t: { name: string }) => [t.name, t]));
    assert.equal(byName.old.valid, false);
    assert.ok(byName.old.revokedAt);
    assert.equal(byName.short.valid, false);
    assert.equal(byName.automation.valid, true);
    assert.ok(byName.old.lastUsedAt, 'the use before the revocation is recorded');
    assert.ok(list.every((t: Record<string, unknown>) => !('token' in t)));
  });

  test('create: bad input is refused with the message; a token is printed once and stored only as a hash', () => {
    for (const [args, message] of [
      [['--name', 'x', '--role', 'god'], /--role.*Allowed choices are admin, reseller, user/],
      [['--name', 'x', '--role', 'user'], /a user token needs --user NAME/],
      [['--name', 'x', '--role', 'user', '--user', 'nosuchaccount'], /no account "nosuchaccount"/],
      [['--name', 'x', '--expires', '0'], /--expires.*a whole number from 1 to 3650/],
      [['--name', 'automation'], /an API token named "automation" exists already/],
    ] as const) {
      const r = cli(dataDir, ['api-token', 'create', ...args]);
      assert.notEqual(r.code, 0);
      assert.match(r.json.error, message);
    }
    assert.match(admin, /^tmk_[A-Za-z0-9_-]{43}$/);
    const r = cli(dataDir, ['api-token', 'revoke', 'nosuch']);
    assert.equal(r.code, 1);
    assert.equal(r.json.error, 'no API token named "nosuch"');
  });
});

describe('endpoint families', () => {
  test('destinations: add, list, show, edit, enable/disable, visibility, validate, reindex, remove; errors are the CLI\'s', async () => {
    const added = await post('/api/v1/destinations', { name: 'spare', type: 'local', path: otherDir });
    assert.equal(added.status, 201, JSON.stringify(added.json));
    const cliShow = ok(cli(dataDir, ['destination', 'show', 'spare']));
    const shown = await get('/api/v1/destinations/spare');
    assert.deepEqual(Object.keys(shown.json).sort(), Object.keys(cliShow).sort());
    assert.equal(shown.json.settings.path, otherDir);
    assert.deepEqual((await get('/api/v1/destinations')).json.map((d: { name: string }) => d.name), ['disk', 'spare']);

    const dup = await post('/api/v1/destinations', { name: 'spare', type: 'local', path: otherDir });
    const dupCli = cli(dataDir, ['destination', 'add', '--name', 'spare', '--type', 'local', '--path', otherDir]);
    assert.equal(dup.status, 409);
    assert.deepEqual(dup.json, dupCli.json);
    const invalid = await post('/api/v1/destinations', { name: 'bad/name', type: 'local', path: otherDir });
    const invalidCli = cli(dataDir, ['destination', 'add', '--name', 'bad/name', '--type', 'local', '--path', otherDir]);
    assert.equal(invalid.status, 400);
    assert.deepEqual(invalid.json, invalidCli.json);
    const missing = await get('/api/v1/destinations/nosuch');
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.json, cli(dataDir, ['destination', 'show', 'nosuch']).json);
    assert.equal((await post('/api/v1/destinations', { name: 'x', type: 'local', path: otherDir, colour: 'red' })).status, 400);
    const notJson = await fetch(`${base}/api/v1/destinations`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: '{"name":' });
    assert.equal(notJson.status, 400);

    const edited = await call('PATCH', '/api/v1/destinations/spare', admin, { freeSpaceLimitMb: 5 });
    assert.equal(edited.status, 200, JSON.stringify(edited.json));
    assert.deepEqual(edited.json.changed, ['freeSpaceLimitMb']);
    assert.equal(edited.json.freeSpaceLimitMb, 5);
    assert.equal((await post('/api/v1/destinations/spare/disable')).json.enabled, false);
    assert.equal((await post('/api/v1/destinations/spare/enable')).json.enabled, true);
    assert.equal((await post('/api/v1/destinations/spare/visibility', { visible: false })).json.snapshotsVisible, false);
    const validated = await post('/api/v1/destinations/spare/validate');
    assert.equal(validated.json.ok, true);
    const reindexed = await post('/api/v1/destinations/spare/reindex');
    assert.equal(reindexed.status, 200);
    assert.equal(reindexed.json.found, 0);
    const removed = await call('DELETE', '/api/v1/destinations/spare', admin);
    assert.deepEqual(removed.json, { removed: 'spare', deletedSnapshots: 0 });
    assert.equal((await get('/api/v1/destinations/spare')).status, 404);
  });

  test('jobs, backups and tasks: a run answers at once with its tasks, which the client polls', async () => {
    const job = await post('/api/v1/jobs', { name: 'nightly', destination: 'disk', structure: 'incremental', items: ['files'], accounts: [a.username, b.username] });
    assert.equal(job.status, 201, JSON.stringify(job.json));
    assert.deepEqual(job.json, ok(cli(dataDir, ['job', 'show', 'nightly'])));
    assert.deepEqual((await get('/api/v1/jobs')).json.map((j: { name: string }) => j.name), ['nightly']);
    const both = await post('/api/v1/jobs', { name: 'x', destination: 'disk', structure: 'archive', all: true, accounts: [a.username] });
    assert.equal(both.status, 400);
    assert.equal(both.json.error, 'give either --all or --accounts');
    assert.equal((await post('/api/v1/backups', { job: 'nosuch' })).status, 404);

    const t0 = Date.now();
    const run = await post('/api/v1/backups', { job: 'nightly' });
    assert.equal(run.status, 202);
    assert.equal(run.json.tasks.length, 2);
    assert.ok(Date.now() - t0 < 5000);
    const done = await Promise.all(run.json.tasks.map((id: number) => waitForTask(id)));
    assert.deepEqual(done.map((t) => [t.type, t.status, t.account]), [['backup', 'completed', a.username], ['backup', 'completed', b.username]]);
    assert.match(done[0].snapshot, /^\d{8}T\d{6}Z-[0-9a-f]{4}$/);
    assert.equal((await get('/api/v1/tasks/999999')).status, 404);

    const throwaway = await post('/api/v1/jobs', { name: 'throwaway', destination: 'disk', structure: 'archive', accounts: [a.username] });
    assert.equal(throwaway.status, 201);
    assert.deepEqual((await call('DELETE', '/api/v1/jobs/throwaway', admin)).json, { removed: 'throwaway' });
    const inUse = await call('DELETE', '/api/v1/destinations/disk', admin);
    assert.equal(inUse.status, 409);
    assert.match(inUse.json.error, /is used by job\(s\): nightly/);
  });

  test('snapshots: list, show, files; restore runs as a task; download streams a .tar.gz', async () => {
    const list = (await get(`/api/v1/snapshots?account=${a.username}`)).json;
    assert.equal(list.length, 1);
    assert.deepEqual(list, ok(cli(dataDir, ['snapshot', 'list', '--account', a.username])));
    const id = list[0].id as string;
    const shown = await get(`/api/v1/snapshots/${id}`);
    assert.equal(shown.json.manifest.id, id);
    const files = await get(`/api/v1/snapshots/${id}/files?path=site`);
    assert.deepEqual(files.json.map((e: { name: string }) => e.name), ['index.html']);
    assert.deepEqual((await get('/api/v1/snapshots/20200101T000000Z-0000')).json, { error: 'no snapshot 20200101T000000Z-0000' });

    asAccount(a, `printf 'version 2' > site/index.html`);
    const started = await post(`/api/v1/snapshots/${id}/restore`, { paths: ['site/index.html'] });
    assert.equal(started.status, 202, JSON.stringify(started.json));
    const task = await waitForTask(started.json.task);
    assert.equal(task.status, 'completed', JSON.stringify(task));
    assert.equal(task.result.files.files, 1);
    assert.equal(fs.readFileSync(path.join(a.home, 'site/index.html'), 'utf8'), 'version 1');

    const dl = await call('POST', `/api/v1/snapshots/${id}/download`, admin, { paths: ['site'] });
    assert.equal(dl.status, 200);
    assert.equal(dl.headers.get('content-type'), 'application/gzip');
    const tarFile = path.join(dataDir, 'dl.tar');
    fs.writeFileSync(tarFile, zlib.gunzipSync(dl.body));
    assert.match(execFileSync('tar', ['tf', tarFile], { encoding: 'utf8' }), /site\/index\.html/);
  });

  test('regression: a misspelt body field or a repeated query parameter was dropped, and a restore without its paths restored the whole home', async () => {
    const id = (await get(`/api/v1/snapshots?account=${a.username}`)).json[0].id as string;
    asAccount(a, `printf 'kept' > site/index.html`);
    const typo = await post(`/api/v1/snapshots/${id}/restore`, { path: ['site/index.html'], wait: true });
    assert.equal(typo.status, 400, JSON.stringify(typo.json));
    assert.match(typo.json.error, /^"path": not a field of this request \(known: paths, pathsBase64, /);
    assert.equal((await get('/api/v1/tasks?active=1')).json.length, 0);
    assert.equal(fs.readFileSync(path.join(a.home, 'site/index.html'), 'utf8'), 'kept');
    assert.equal((await post(`/api/v1/snapshots/${id}/download`, { paths: ['site'], database: ['x'] })).status, 400);
    assert.equal((await post('/api/v1/backups', { job: 'nightly', acount: a.username })).status, 400);
    assert.equal((await post('/api/v1/jobs', { name: 'typo', destination: 'disk', structure: 'archive', account: [a.username] })).status, 400);
    assert.equal((await post('/api/v1/sites/restore', { folder: 'site', account: a.username, snapshots: id })).status, 400);
    const long = await post(`/api/v1/snapshots/${id}/restore`, { ['x'.repeat(5000)]: 1 });
    assert.equal(long.status, 400);
    assert.ok(long.json.error.length < 300, long.json.error);

    const twice = await get(`/api/v1/snapshots/${id}/files?path=site&path=other`);
    assert.equal(twice.status, 400, JSON.stringify(twice.json));
    assert.deepEqual(twice.json, { error: 'path: one value is expected' });
    assert.equal((await get(`/api/v1/versions?path=site&path=x&account=${a.username}`)).status, 400);
    assert.equal((await get('/api/v1/search?query=a&query=b')).json.error, 'query: one value is expected');
    assert.equal((await get(`/api/v1/snapshots?account=${a.username}&account=${b.username}`)).status, 400);
  });

  test('regression: browsing a folder that is not on the destination (or is a file) was a 500 "internal error" logged as a crash', async () => {
    for (const p of ['nosuch', 'tidemark.json', `${a.username}/nosuch`]) {
      const r = await get(`/api/v1/destinations/disk/browse?path=${encodeURIComponent(p)}`);
      assert.equal(r.status, 404, `${p}: ${JSON.stringify(r.json)}`);
      assert.match(r.json.error, /^not (found on|a directory on) the destination: /);
    }
    assert.equal((await get('/api/v1/destinations/disk/browse?path=..')).status, 400);
    assert.equal((await get('/api/v1/destinations/disk/browse')).status, 200);
    assert.doesNotMatch(daemonOutput, /DestinationError: not (found|a directory)/);
  });

  test('regression: a refused destination setting was named twice ("parallelTransfers: parallel transfers: 1-64")', async () => {
    const s3 = await post('/api/v1/destinations', { name: 'x', type: 's3', endpoint: 'https://s3.example.com', bucket: 'bucket', accessKeyId: 'a', secretAccessKey: 's', parallelTransfers: 99, partSizeMb: 1 });
    assert.equal(s3.status, 400);
    assert.equal(s3.json.error, 'parallelTransfers: parallel transfers must be 1-64; partSizeMb: part size must be 5-512');
    const ssh = await post('/api/v1/destinations', { name: 'x', type: 'ssh', host: 'h', username: 'u', password: 'p', path: '/x', parallelTransfers: 0 });
    assert.equal(ssh.json.error, 'parallelTransfers: parallel transfers must be 1-64');
  });

  test("regression: zod's default messages reached the caller (\"Invalid input: expected string, received undefined\")", async () => {
    const cases: [Record<string, unknown>, string, string][] = [
      [{ type: 'local', path: '/srv/x' }, '/api/v1/destinations', 'name: name is required'],
      [{ name: 'x', type: 'local', path: '/srv/x', freeSpaceLimitMb: -1 }, '/api/v1/destinations', 'freeSpaceLimitMb: the free space limit (MB) must be at least 0'],
      [{ name: 'x', type: 'ssh', host: 'h', username: 'u', password: '', path: '/x', timeoutMs: 5 }, '/api/v1/destinations',
        'password: password must not be empty; timeoutMs: the timeout (ms) must be at least 1000'],
      [{ name: 'j2', structure: 'archive', all: true, items: [], excludes: [''] }, '/api/v1/jobs',
        'destination: destination is required; items: give at least one; excludes.0: an exclude pattern must not be empty'],
    ];
    for (const [b, url, message] of cases) {
      const r = await post(url, b);
      assert.equal(r.status, 400, JSON.stringify(r.json));
      assert.equal(r.json.error, message);
      assert.doesNotMatch(r.json.error, /Invalid input|Too small|Too big|expected \w+, received|>=/);
    }
  });

  test('regression: the search took limit=0 (and answered one result) where the CLI refuses --limit 0', async () => {
    const id = (await get(`/api/v1/snapshots?account=${a.username}`)).json[0].id as string;
    for (const url of [`/api/v1/search?query=index&account=${a.username}&limit=0`, `/api/v1/snapshots/${id}/changes?account=${a.username}&limit=0`]) {
      const r = await get(url);
      assert.equal(r.status, 400, `${url}: ${JSON.stringify(r.json)}`);
      assert.match(r.json.error, /^limit: a whole number from 1 to 10{3,4} is expected$/);
    }
    assert.equal(cli(dataDir, ['snapshot', 'search', 'index', '--account', a.username, '--limit', '0']).code, 2, 'the CLI refuses it the same way');
    const one = await get(`/api/v1/search?query=index&account=${a.username}&limit=1&offset=0`);
    assert.equal(one.status, 200, JSON.stringify(one.json));
    assert.ok(one.json.results.length <= 1);
    assert.equal((await get(`/api/v1/snapshots/${id}/changes?account=${a.username}&limit=1`)).status, 200);
  });

  test('regression: downloading a path or database the snapshot does not hold was a 502 (as if the destination had failed)', async () => {
    const id = (await get(`/api/v1/snapshots?account=${a.username}`)).json[0].id as string;
    for (const body of [{ paths: ['nosuch'] }, { paths: ['site', 'site/nosuch'] }, { databases: [`${a.username}_nosuch`] }]) {
      const r = await post(`/api/v1/snapshots/${id}/download`, body);
      assert.equal(r.status, 404, `${JSON.stringify(body)}: ${r.status} ${r.body.toString()}`);
      assert.match(r.json.error, /not in (this )?snapshot/);
      assert.equal(r.headers.get('content-type')?.startsWith('application/json'), true);
    }
    const files = await get(`/api/v1/snapshots/${id}/files?path=nosuch`);
    assert.deepEqual([files.status, files.json], [404, { error: 'not in this snapshot: nosuch' }]);
    assert.equal((await post(`/api/v1/snapshots/${id}/download`, { paths: ['site'] })).status, 200);
  });

  test('an account holder\'s token sees its own account only and obeys the permissions (403)', async () => {
    const alice = newToken(['--name', 'alice', '--role', 'user', '--user', a.username]);
    const bob = newToken(['--name', 'bob', '--role', 'user', '--user', b.username]);
    const mine = (await get('/api/v1/snapshots', alice)).json;
    assert.ok(mine.length > 0 && mine.every((s: { account: string }) => s.account === a.username));
    const bobs = (await get('/api/v1/snapshots', bob)).json[0].id as string;
    assert.equal((await get(`/api/v1/snapshots/${bobs}`, alice)).status, 404);
    assert.deepEqual((await get('/api/v1/destinations', alice)).json, []);
    assert.equal((await get('/api/v1/jobs/nightly', alice)).status, 404);
    const refusedAdd = await post('/api/v1/destinations', { name: 'mine', type: 'ssh', host: '127.0.0.1', path: '/x' }, alice);
    assert.equal(refusedAdd.status, 400);
    assert.equal(refusedAdd.json.error, 'the provider does not allow account-level destinations');
    const dl = await post(`/api/v1/snapshots/${bobs}/download`, { paths: ['b.txt'] }, bob);
    assert.equal(dl.status, 403);
    assert.deepEqual(dl.json, { error: 'the provider does not allow this account to download from snapshots' });
    // b's backup task is b's to follow, not a's.
    const bTask = new Database(path.join(dataDir, 'tidemark.sqlite'), { readonly: true });
    const id = (bTask.prepare(`SELECT id FROM tasks WHERE account = ? LIMIT 1`).get(b.username) as { id: number }).id;
    bTask.close();
    assert.equal((await get(`/api/v1/tasks/${id}`, bob)).status, 200);
    assert.equal((await get(`/api/v1/tasks/${id}`, alice)).status, 404);
  });

  test('on the root-only socket a request without a token acts as root', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      http.get({ socketPath, path: '/api/v1/jobs' }, (res) => { let s = ''; res.on('data', (d) => { s += d; }); res.on('end', () => resolve(s)); }).on('error', reject);
    });
    assert.deepEqual(JSON.parse(body).map((j: { name: string }) => j.name), ['nightly']);
  });
});

test('no token ever appears in the logs, the activity or the state store', async () => {
  const logged = ok(cli(dataDir, ['api-token', 'list'])).length;
  assert.ok(logged >= 4);
  const stored = fs.readdirSync(dataDir).filter((f) => f.startsWith('tidemark.sqlite')).map((f) => fs.readFileSync(path.join(dataDir, f)).toString('latin1')).join('');
  const db = new Database(path.join(dataDir, 'tidemark.sqlite'), { readonly: true });
  const activity = JSON.stringify(db.prepare('SELECT * FROM activity').all());
  const taskLogs = JSON.stringify(db.prepare('SELECT * FROM task_log').all());
  db.close();
  assert.match(activity, /api-token\.create/);
  for (const t of tokens) {
    for (const [where, text] of [['daemon output', daemonOutput], ['state store', stored], ['activity', activity], ['task log', taskLogs]] as const) {
      assert.ok(!text.includes(t) && !text.includes(t.slice(4)), `a token appears in the ${where}`);
    }
  }
});
