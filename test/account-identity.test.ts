import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import http from 'node:http';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import Database from 'better-sqlite3';
import { createAccount, makeHomeRoot, removeAccount, asAccount, type TestAccount, createNamedAccount } from './support/accounts.js';
import { CLI, cli, makeDataDir, makeDestinationDir, ok, type CliResult } from './support/cli.js';
import { startTestSshServer, type TestSshServer } from './support/sshd.js';
import * as m0001 from '../server/store/migrations/0001-initial.js';
import * as m0002 from '../server/store/migrations/0002-owners.js';
import * as m0003 from '../server/store/migrations/0003-sessions.js';
import * as m0004 from '../server/store/migrations/0004-api-tokens.js';
import * as m0005 from '../server/store/migrations/0005-schedules.js';
import * as m0006 from '../server/store/migrations/0006-queue.js';
import * as m0007 from '../server/store/migrations/0007-account-preferences.js';
import { openStore } from '../server/store/index.js';
import { openContext } from '../server/services/context.js';
import { listSnapshots, restore } from '../server/services/snapshots.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const failed = (r: CliResult, pattern: RegExp): void => {
  assert.notEqual(r.code, 0, `expected a refusal, got: ${r.stdout}`);
  assert.match(r.json?.error ?? r.stderr, pattern);
};
/**
 * One request on a connection of its own: the synchronous CLI calls of these tests block the
 * event loop longer than the daemon keeps an idle connection, so a reused one may be closed.
 */
function get(url: string, headers: Record<string, string>): Promise<{ status: number; body: string; setCookie: string[] }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: 'text/html', ...headers }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, setCookie: res.headers['set-cookie'] ?? [] }));
    });
    req.on('error', reject);
  });
}

/** A signed-in browser: its session cookie. */
class Browser {
  constructor(private readonly base: string, private readonly cookie: string) {}
  get(p: string): Promise<{ status: number; body: string }> { return get(this.base + p, { cookie: this.cookie }); }
}

const ids = (docs: { id: string }[]): string[] => docs.map((d) => d.id).sort();

describe('an account removed and re-created under the same name', () => {
  let server: TestSshServer;
  let homeRoot: string;
  let dataDir: string;
  let providerDir: string;
  let secretsDir: string;
  let daemon: ChildProcess;
  let base: string;
  let n: TestAccount;
  let m: TestAccount;
  const fillers: TestAccount[] = [];
  const name = `tmi${crypto.randomBytes(3).toString('hex')}`;
  const silentName = `tmj${crypto.randomBytes(3).toString('hex')}`;
  let providerSnapshot: string;
  let ownSnapshot: string;
  let oldToken: string;
  let oldSession: Browser;

  const as = (who: string, args: string[]): CliResult => cli(dataDir, ['--as-account', who, ...args]);
  const api = async (token: string, url: string): Promise<{ status: number; json: any }> => {
    const r = await get(`${base}/api/v1${url}`, { authorization: `Bearer ${token}`, accept: 'application/json' });
    let json: any = null;
    try { json = JSON.parse(r.body); } catch { /* not JSON */ }
    return { status: r.status, json };
  };
  const signIn = async (user: string): Promise<Browser> => {
    const r = await get(ok(cli(dataDir, ['login-url', '--user', user, '--role', 'user'])).url as string, {});
    assert.equal(r.status, 200);
    const cookie = r.setCookie.map((c) => c.split(';')[0]!).find((c) => c.startsWith('tidemark_session='));
    assert.ok(cookie, 'a session cookie');
    return new Browser(base, cookie);
  };
  /** A user that takes the next uid, so that the re-created account gets another one. */
  const filler = (): void => { fillers.push(createAccount(homeRoot, 'tmf')); };

  before(async () => {
    server = await startTestSshServer({ allowCommands: false });
    homeRoot = makeHomeRoot();
    n = createNamedAccount(homeRoot, name);
    m = createNamedAccount(homeRoot, silentName);
    asAccount(n, "printf 'letters of the first holder' > private.txt");
    asAccount(m, "printf 'diary of the first holder' > diary.txt");
    const port = 19000 + (process.pid % 1000);
    dataDir = makeDataDir({});
    fs.writeFileSync(path.join(dataDir, 'config.json'), JSON.stringify({
      panel: 'standalone', homeRoots: [homeRoot], socketPath: path.join(dataDir, 'run', 'tidemark.sock'), httpPort: port, logLevel: 'silent',
      accountDestinations: { enabled: true, allowHosts: ['127.0.0.1'] },
    }));
    providerDir = makeDestinationDir();
    secretsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-secrets-'));
    fs.writeFileSync(path.join(secretsDir, 'key'), server.privateKey, { mode: 0o600 });
    ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', providerDir]));
    ok(cli(dataDir, ['job', 'add', '--name', 'nightly', '--destination', 'disk', '--structure', 'incremental', '--items', 'files', '--accounts', `${name},${silentName}`]));
    providerSnapshot = ok(cli(dataDir, ['backup', '--job', 'nightly', '--account', name])).snapshots[0];
    ok(cli(dataDir, ['backup', '--job', 'nightly', '--account', silentName]));
    // The first holder's own destination and job.
    ok(as(name, ['destination', 'add', '--name', 'own', '--type', 'ssh', '--host', '127.0.0.1', '--port', String(server.port), '--user', server.user,
      '--path', server.remoteRoot, '--key-file', path.join(secretsDir, 'key')]));
    ok(as(name, ['job', 'add', '--name', 'own-job', '--destination', 'own', '--structure', 'archive', '--items', 'files']));
    ownSnapshot = ok(as(name, ['backup', '--job', 'own-job'])).snapshots[0];
    oldToken = ok(cli(dataDir, ['api-token', 'create', '--name', 'first-holder', '--role', 'user', '--user', name])).token;

    daemon = spawn(process.execPath, [CLI, '--data-dir', dataDir, 'serve'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    daemon.stderr!.on('data', (d) => { stderr += d; });
    daemon.on("exit", (code, signal) => { process.stderr.write(`the daemon exited ${code} ${signal}: ${stderr}\n`); });
    base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 20000;
    for (;;) {
      try { if ((await fetch(`${base}/api/v1/health`)).ok) break; } catch { /* not up yet */ }
      if (daemon.exitCode !== null || Date.now() > deadline) throw new Error(`the daemon did not start: ${stderr}`);
      await sleep(100);
    }
    oldSession = await signIn(name);
  });

  after(async () => {
    if (daemon && daemon.exitCode === null) {
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon.once('exit', r));
    }
    for (const a of [n, m, ...fillers]) if (a) removeAccount(a);
    for (const d of [homeRoot, dataDir, providerDir, secretsDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
    await server?.stop();
  });

  test('before the removal the first holder sees its snapshots through the CLI, an API token and a web session', async () => {
    assert.deepEqual(ids(ok(as(name, ['snapshot', 'list']))), [ownSnapshot, providerSnapshot].sort());
    const r = await api(oldToken, '/snapshots');
    assert.equal(r.status, 200);
    assert.ok(r.json.some((s: { id: string }) => s.id === providerSnapshot));
    const page = await oldSession.get('/snapshots');
    assert.equal(page.status, 200);
    assert.ok(page.body.includes(providerSnapshot));
  });

  test("regression: a new account that reuses a removed account's name inherits its snapshots, its own destinations, jobs, API tokens and sessions", async () => {
    ok(cli(dataDir, ['panel-event', 'removed', '--user', name]));
    removeAccount(n);
    filler();
    n = createNamedAccount(homeRoot, name);
    ok(cli(dataDir, ['panel-event', 'created', '--user', name]));

    // The new holder: no snapshot, destination or job of the first one, by any way in.
    assert.deepEqual(ok(as(name, ['snapshot', 'list'])), []);
    assert.deepEqual(ok(as(name, ['destination', 'list'])), []);
    assert.deepEqual(ok(as(name, ['job', 'list'])), []);
    failed(as(name, ['snapshot', 'show', providerSnapshot]), new RegExp(`no snapshot ${providerSnapshot}`));
    failed(as(name, ['restore', providerSnapshot, '--path', 'private.txt']), /no snapshot/);
    failed(as(name, ['backup', '--job', 'own-job']), /no job named "own-job"/);
    assert.deepEqual((ok(as(name, ['activity'])) as { target: string }[]).filter((e) => e.target === 'job own-job'), [], "the first holder's actions are not the new holder's");
    const newToken = ok(cli(dataDir, ['api-token', 'create', '--name', 'second-holder', '--role', 'user', '--user', name])).token;
    const listed = await api(newToken, '/snapshots');
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.json, []);
    assert.equal((await api(newToken, `/snapshots/${providerSnapshot}`)).status, 404);
    const fresh = await signIn(name);
    const page = await fresh.get('/snapshots');
    assert.equal(page.status, 200);
    assert.ok(!page.body.includes(providerSnapshot) && !page.body.includes(ownSnapshot), 'the page lists none of the first holder\'s snapshots');

    // The first holder's token and session are refused.
    const stale = await api(oldToken, '/snapshots');
    assert.equal(stale.status, 401);
    assert.equal((await oldSession.get('/snapshots')).status, 401);
    const tokens = ok(cli(dataDir, ['api-token', 'list'])) as { name: string; valid: boolean }[];
    assert.equal(tokens.find((t) => t.name === 'first-holder')!.valid, false, 'revoked, and still listed');

    // The first holder's destination and job are not the new holder's and take no backups.
    const identities = ok(cli(dataDir, ['account', 'identities', '--account', name])) as { identity: number; current: boolean; snapshots: number; removedAt: string | null }[];
    assert.equal(identities.length, 2);
    const former = identities.find((i) => !i.current)!;
    assert.ok(former.removedAt);
    assert.equal(former.snapshots, 2);
    const retired = `${name}#${former.identity}`;
    const own = ok(cli(dataDir, ['destination', 'show', 'own', '--owner', retired]));
    assert.equal(own.owner, retired);
    assert.equal(own.enabled, false);
    failed(cli(dataDir, ['backup', '--job', 'own-job', '--owner', retired]), /disabled|takes no backup/);
    // The name is free for the new holder's own destination.
    ok(as(name, ['destination', 'add', '--name', 'own', '--type', 'ssh', '--host', '127.0.0.1', '--port', String(server.port), '--user', server.user,
      '--path', path.join(server.remoteRoot), '--key-file', path.join(secretsDir, 'key')]));
    assert.deepEqual(ok(as(name, ['destination', 'list'])).map((d: { owner: string }) => d.owner), [name]);

    // The new holder's own backup starts a chain of its own, and is the only one it sees.
    const mine = ok(cli(dataDir, ['backup', '--job', 'nightly', '--account', name])).snapshots[0];
    assert.deepEqual(ids(ok(as(name, ['snapshot', 'list']))), [mine]);

    // Root still lists the former holder's snapshots, and hands them over.
    const listedByRoot = ok(cli(dataDir, ['snapshot', 'list', '--account', name])) as { id: string; formerAccount: boolean }[];
    assert.deepEqual(listedByRoot.filter((x) => x.formerAccount).map((x) => x.id).sort(), [ownSnapshot, providerSnapshot].sort());
    const all = ids(listedByRoot);
    assert.deepEqual(all, [mine, ownSnapshot, providerSnapshot].sort());
    const handed = ok(cli(dataDir, ['snapshot', 'assign', '--from-identity', String(former.identity), '--to', name]));
    assert.deepEqual(ids(handed.assigned), [ownSnapshot, providerSnapshot].sort());
    assert.ok(handed.assigned.every((x: { formerAccount: boolean }) => !x.formerAccount));
    assert.equal(handed.to.account, name);
    // The one on the provider's destination is now visible; the one on the former holder's own destination stays with that destination.
    assert.deepEqual(ids(ok(as(name, ['snapshot', 'list']))), [mine, providerSnapshot].sort());
    assert.deepEqual(ids((await api(newToken, '/snapshots')).json), [mine, providerSnapshot].sort());
  });

  test('regression: an account removed and re-created without panel events (a missed removal) is noticed by its new uid and inherits nothing', async () => {
    const before = ok(cli(dataDir, ['snapshot', 'list', '--account', silentName])) as { id: string }[];
    assert.equal(before.length, 1);
    const token = ok(cli(dataDir, ['api-token', 'create', '--name', 'silent-first', '--role', 'user', '--user', silentName])).token;
    assert.equal((await api(token, '/snapshots')).status, 200);
    const session = await signIn(silentName);
    const oldUid = m.uid;
    removeAccount(m);
    filler();
    m = createNamedAccount(homeRoot, silentName);
    assert.notEqual(m.uid, oldUid);

    assert.equal((await api(token, '/snapshots')).status, 401, 'the token of the removed account');
    assert.equal((await session.get('/snapshots')).status, 401, 'the session of the removed account');
    assert.deepEqual(ok(as(silentName, ['snapshot', 'list'])), []);
    const identities = ok(cli(dataDir, ['account', 'identities', '--account', silentName])) as { uid: number; current: boolean; removedReason: string | null }[];
    assert.deepEqual(identities.map((i) => [i.uid, i.current]), [[oldUid, false], [m.uid, true]]);
    assert.match(identities[0]!.removedReason!, /uid or creation time changed/);
    assert.deepEqual(ids(ok(cli(dataDir, ['snapshot', 'list', '--account', silentName]))), ids(before), 'root still has it');
  });

  test('a renamed account keeps its identity: its own destination, snapshots and token follow it, and a new account under the old name gets none', async () => {
    const oldName = `tmr${crypto.randomBytes(3).toString('hex')}`;
    const newName = `tmr${crypto.randomBytes(3).toString('hex')}`;
    const r = createNamedAccount(homeRoot, oldName);
    fillers.push(r);
    asAccount(r, "printf 'kept across the rename' > kept.txt");
    ok(cli(dataDir, ['job', 'add', '--name', 'renamed-job', '--destination', 'disk', '--structure', 'archive', '--items', 'files', '--accounts', oldName]));
    const snap = ok(cli(dataDir, ['backup', '--job', 'renamed-job'])).snapshots[0] as string;
    ok(as(oldName, ['destination', 'add', '--name', 'mine', '--type', 'ssh', '--host', '127.0.0.1', '--port', String(server.port), '--user', server.user,
      '--path', server.remoteRoot, '--key-file', path.join(secretsDir, 'key')]));
    const token = ok(cli(dataDir, ['api-token', 'create', '--name', 'renamed-holder', '--role', 'user', '--user', oldName])).token;
    r.home = path.join(homeRoot, newName);
    execFileSync('usermod', ['--login', newName, '--move-home', '--home', r.home, oldName], { stdio: 'pipe' });
    execFileSync('groupmod', ['--new-name', newName, oldName], { stdio: 'pipe' });
    r.username = newName;
    ok(cli(dataDir, ['panel-event', 'renamed', '--user', oldName, '--new-user', newName]));

    assert.deepEqual(ok(as(newName, ['destination', 'list'])).map((d: { name: string; owner: string }) => [d.name, d.owner]), [['mine', newName]]);
    assert.deepEqual(ids(ok(as(newName, ['snapshot', 'list']))), [snap]);
    const viaToken = await api(token, '/snapshots');
    assert.equal(viaToken.status, 200, 'the token follows the account');
    assert.deepEqual(ids(viaToken.json), [snap]);

    const again = createNamedAccount(homeRoot, oldName);
    fillers.push(again);
    ok(cli(dataDir, ['panel-event', 'created', '--user', oldName]));
    assert.deepEqual(ok(as(oldName, ['destination', 'list'])), []);
    assert.deepEqual(ok(as(oldName, ['snapshot', 'list'])), []);
  });

  test('snapshot assign refuses what it cannot do clearly', () => {
    const s = ok(cli(dataDir, ['snapshot', 'list', '--account', silentName]))[0].id as string;
    failed(cli(dataDir, ['snapshot', 'assign', s, '--to', name]), /can be handed only to the account now named/);
    failed(cli(dataDir, ['snapshot', 'assign', s, '--to', 'nosuchaccount']), /no account named "nosuchaccount"/);
    failed(cli(dataDir, ['snapshot', 'assign', '--to', name]), /give a snapshot id or --from-identity/);
    failed(as(name, ['snapshot', 'assign', s, '--to', name]), /--as-account and --owner do not apply/);
  });
});

describe('cPanel: the creation time tells apart a re-created account with the same uid', () => {
  let root: string;
  let homeRoot: string;
  let dataDir: string;
  let dest: string;
  let a: TestAccount;
  const usersFile = (): string => path.join(root, 'var/cpanel/users', a.username);
  const userFile = (startdate: number): string => `USER=${a.username}\nDNS=${a.username}.example\nOWNER=resa\nSTARTDATE=${startdate}\nPLAN=default\n`;

  before(() => {
    homeRoot = makeHomeRoot();
    a = createAccount(homeRoot, 'tmc');
    asAccount(a, "printf 'of the first holder' > mine.txt");
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-cpanel-'));
    fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
    fs.mkdirSync(path.join(root, 'var/cpanel/users'), { recursive: true });
    fs.writeFileSync(path.join(root, 'etc/passwd'), `${a.username}:x:${a.uid}:${a.gid}::${a.home}:/bin/bash\n`);
    fs.writeFileSync(usersFile(), userFile(1_700_000_000));
    dataDir = makeDataDir({ panel: 'cpanel', rootPrefix: root });
    dest = makeDestinationDir();
    ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', dest]));
    ok(cli(dataDir, ['job', 'add', '--name', 'nightly', '--destination', 'disk', '--structure', 'archive', '--items', 'files', '--accounts', a.username]));
  });

  after(() => {
    if (a) removeAccount(a);
    for (const d of [root, homeRoot, dataDir, dest]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  test('regression: a cPanel account re-created with the same uid but a new STARTDATE inherits no snapshot of the removed one', async () => {
    const first = ok(cli(dataDir, ['backup', '--job', 'nightly'])).snapshots[0] as string;
    assert.deepEqual(ids(ok(cli(dataDir, ['--as-account', a.username, 'snapshot', 'list']))), [first]);
    const [identity] = ok(cli(dataDir, ['account', 'identities', '--account', a.username])) as { panelCreatedAt: string }[];
    assert.equal(identity!.panelCreatedAt, new Date(1_700_000_000_000).toISOString());
    // Removed and created again by the panel (same uid, as useradd may give), no event received.
    fs.writeFileSync(usersFile(), userFile(1_750_000_000));
    assert.deepEqual(ok(cli(dataDir, ['--as-account', a.username, 'snapshot', 'list'])), []);
    const second = ok(cli(dataDir, ['backup', '--job', 'nightly'])).snapshots[0] as string;
    assert.deepEqual(ids(ok(cli(dataDir, ['--as-account', a.username, 'snapshot', 'list']))), [second]);
    assert.deepEqual(ids(ok(cli(dataDir, ['snapshot', 'list']))), [first, second].sort());

    // The reseller that owned the removed account still sees its snapshot, another does not;
    // neither restores it into the new account's home.
    const ctx = await openContext(dataDir);
    try {
      const resa = { name: 'resa', role: 'reseller' as const };
      assert.deepEqual(ids(await listSnapshots(ctx, {}, resa)), [first, second].sort());
      assert.deepEqual(ids(await listSnapshots(ctx, {}, { name: 'resb', role: 'reseller' })), []);
      const old = (await listSnapshots(ctx, {}, resa)).find((x) => x.id === first)!;
      await assert.rejects(restore(ctx, old, { paths: [], databases: [], intoFolder: true }, resa), /of a former account named .*: only the provider restores it/);
    } finally {
      ctx.close();
    }
  });
});

describe('the state store', () => {
  test('existing rows migrate to the identities of the accounts as they are now', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-store-'));
    try {
      const old = new Database(path.join(dir, 'tidemark.sqlite'));
      old.pragma('foreign_keys = ON');
      old.exec('CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)');
      for (const mig of [m0001, m0002, m0003, m0004, m0005, m0006, m0007]) {
        await mig.up({ context: old });
        old.prepare('INSERT INTO schema_migrations VALUES (?, ?)').run(mig.name, '2026-01-01T00:00:00Z');
      }
      old.exec(`
        INSERT INTO destinations (id, name, type, settings, owner, created_at) VALUES (1, 'disk', 'local', '{"path":"/x"}', 'root', 't'), (2, 'own', 'ssh', '{}', 'alice', 't');
        INSERT INTO jobs (id, name, owner, destination_id, structure, accounts, items, excludes, created_at) VALUES (3, 'mine', 'alice', 2, 'archive', '{"list":["alice"]}', '["files"]', '[]', 't');
        INSERT INTO snapshots (id, destination_id, account, job_id, structure, status, started_at, finished_at, items, files, bytes, stored_bytes, databases)
          VALUES ('s1', 1, 'alice', NULL, 'archive', 'completed', 't', 't', '["files"]', 1, 2, 3, '[]'), ('s2', 1, 'bob', NULL, 'archive', 'completed', 't', 't', '["files"]', 1, 2, 3, '[]');
        INSERT INTO api_tokens (name, token_hash, actor, role, created_at) VALUES ('t1', 'h1', 'alice', 'user', 1), ('t2', 'h2', 'root', 'admin', 1);
        INSERT INTO sessions (id_hash, actor, role, created_at, last_seen_at, idle_ms, expires_at) VALUES ('x', 'bob', 'user', 1, 1, 1, 1);
        INSERT INTO account_preferences (account, restore_mail, updated_at) VALUES ('carol', 1, 't');
        INSERT INTO tasks (type, status, account, params, created_at) VALUES ('restore', 'completed', 'alice', '{"requestedBy":"alice"}', 't');
      `);
      old.close();
      const store = await openStore(dir);
      try {
        const idOf = (n: string): number => store.accounts.current(n)!.id;
        assert.deepEqual(store.accounts.list().map((a) => [a.name, a.uid, a.firstSeenAt, a.removedAt]),
          [['alice', null, null, null], ['bob', null, null, null], ['carol', null, null, null]]);
        assert.deepEqual(store.snapshots.list().map((s) => [s.id, s.accountId]).sort(), [['s1', idOf('alice')], ['s2', idOf('bob')]]);
        const row = (sql: string): unknown => Object.values(store.db.prepare(sql).get() as object)[0];
        assert.equal(row("SELECT owner_account_id FROM destinations WHERE name = 'own'"), idOf('alice'));
        assert.equal(row("SELECT owner_account_id FROM destinations WHERE name = 'disk'"), null);
        assert.equal(row("SELECT owner_account_id FROM jobs WHERE name = 'mine'"), idOf('alice'));
        assert.equal(row("SELECT account_id FROM api_tokens WHERE name = 't1'"), idOf('alice'));
        assert.equal(row("SELECT account_id FROM api_tokens WHERE name = 't2'"), null);
        assert.equal(row("SELECT account_id FROM sessions WHERE id_hash = 'x'"), idOf('bob'));
        assert.equal(row("SELECT account_id FROM account_preferences WHERE account = 'carol'"), idOf('carol'));
        assert.equal(JSON.parse(row('SELECT params FROM tasks') as string).accountIdentity, idOf('alice'));
        // A removal retires everything the identity owns; a rename carries it.
        store.accounts.retire(idOf('alice'), 'test');
        assert.equal(store.accounts.current('alice'), null);
        assert.deepEqual(store.destinations.list().map((d) => [d.name, d.owner, d.enabled]), [['disk', 'root', true], ['own', 'alice#1', false]]);
        assert.notEqual(store.apiTokens.byName('t1')!.revokedAt, null);
        store.accounts.rename(idOf('bob'), 'robert');
        assert.equal(row("SELECT actor FROM sessions WHERE id_hash = 'x'"), 'robert');
        assert.equal(store.accounts.current('robert')!.name, 'robert');
      } finally {
        store.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
