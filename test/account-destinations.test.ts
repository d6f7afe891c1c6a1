import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { buildTrickyTree } from './support/tricky-tree.js';
import { diffTrees, snapshotTree } from './support/tree.js';
import { cli, makeDataDir, makeDestinationDir, ok, type CliResult } from './support/cli.js';
import { startTestSshServer, type TestSshServer } from './support/sshd.js';
import * as m0001 from '../server/store/migrations/0001-initial.js';
import { openStore } from '../server/store/index.js';
import { ACCOUNT_CONNECT_FAILED } from '../server/destinations/ssh.js';

let server: TestSshServer;
let homeRoot: string;
let a: TestAccount;
let b: TestAccount;
let dataDir: string;
let secretsDir: string;
let providerDir: string;
let remoteB: string;
/** A's snapshot on its own SSH destination. */
let ownSnapshot: string;
/** The provider's snapshots on its local destination, by account. */
const providerSnapshots: Record<string, string> = {};

const config = (accountDestinations?: Record<string, unknown>): void => {
  fs.writeFileSync(path.join(dataDir, 'config.json'), JSON.stringify({
    panel: 'standalone', homeRoots: [homeRoot], ...(accountDestinations ? { accountDestinations } : {}),
  }));
};
const as = (account: TestAccount, args: string[]): CliResult => cli(dataDir, ['--as-account', account.username, ...args]);
const sshAdd = (name: string, remote: string, auth: string[]): string[] => ['destination', 'add', '--name', name, '--type', 'ssh',
  '--host', '127.0.0.1', '--port', String(server.port), '--user', server.user, '--path', remote, ...auth];
const keyAuth = (): string[] => ['--key-file', path.join(secretsDir, 'key')];
const failed = (r: CliResult, pattern: RegExp): void => {
  assert.equal(r.code, 1, `expected a refusal, got exit ${r.code}: ${r.stdout}${r.stderr}`);
  assert.match(r.json?.error ?? '', pattern);
};

before(async () => {
  server = await startTestSshServer({ allowCommands: false });
  homeRoot = makeHomeRoot();
  a = createAccount(homeRoot);
  b = createAccount(homeRoot);
  buildTrickyTree(a);
  fs.writeFileSync(path.join(b.home, 'b-secret.txt'), 'only for b');
  fs.chownSync(path.join(b.home, 'b-secret.txt'), b.uid, b.gid);
  dataDir = makeDataDir({});
  config();
  providerDir = makeDestinationDir();
  secretsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-secrets-'));
  fs.writeFileSync(path.join(secretsDir, 'key'), server.privateKey, { mode: 0o600 });
  fs.writeFileSync(path.join(secretsDir, 'password'), `${server.password}\n`, { mode: 0o600 });
  // B's own "server" is another folder of the same test sshd.
  remoteB = path.join(server.remoteRoot, 'b-server');
  fs.mkdirSync(remoteB);
  const st = fs.statSync(server.remoteRoot);
  fs.chownSync(remoteB, st.uid, st.gid);
});

after(async () => {
  for (const acct of [a, b]) if (acct) removeAccount(acct);
  for (const d of [homeRoot, dataDir, secretsDir, providerDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
  await server?.stop();
});

test('account-level destinations are off by default: an account holder cannot add one', () => {
  failed(as(a, sshAdd('offsite', server.remoteRoot, keyAuth())), /the provider does not allow account-level destinations/);
  assert.deepEqual(ok(cli(dataDir, ['destination', 'list'])), []);
  failed(cli(dataDir, ['--as-account', 'nosuchaccount', 'destination', 'list']), /no account named "nosuchaccount"/);
});

test('when allowed, an account holder adds an SSH destination of its own: owned by it, secrets masked and encrypted', () => {
  // The test sshd listens on loopback, which account destinations may reach only when the provider allows it.
  config({ enabled: true, maxPerAccount: 2, allowHosts: ['127.0.0.1'] });
  const d = ok(as(a, sshAdd('offsite', server.remoteRoot, keyAuth())));
  assert.equal(d.owner, a.username);
  assert.equal(d.type, 'ssh');
  assert.equal(d.settings.privateKey, '********');
  assert.equal(d.settings.hostKeyFingerprint, server.hostKeyFingerprint);
  const p = ok(as(a, sshAdd('offsite-pw', server.remoteRoot, ['--password-file', path.join(secretsDir, 'password')])));
  assert.equal(p.settings.password, '********');
  const stored = fs.readFileSync(path.join(dataDir, 'tidemark.sqlite')).toString('latin1');
  assert.ok(!stored.includes(server.privateKey.split('\n')[1]!), 'the private key is not stored in clear');
  assert.ok(!stored.includes(server.password), 'the password is not stored in clear');
  for (const r of [as(a, ['destination', 'show', 'offsite-pw']), as(a, ['destination', 'list']), cli(dataDir, ['destination', 'list'])]) {
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes(server.password), 'the password is never printed back');
  }
  const rootView = ok(cli(dataDir, ['destination', 'list'])).map((x: any) => [x.name, x.owner]);
  assert.deepEqual(rootView, [['offsite', a.username], ['offsite-pw', a.username]], 'root sees them with their owner');
});

test('an account holder cannot add a local destination nor more than maxPerAccount', () => {
  const local = as(a, ['destination', 'add', '--name', 'mine-local', '--type', 'local', '--path', makeDestinationDir()]);
  failed(local, /cannot add a local destination: a local path would make the server write wherever the account chooses/);
  failed(as(a, sshAdd('third', server.remoteRoot, keyAuth())), /at most 2 destination/);
  assert.deepEqual(ok(as(a, ['destination', 'list'])).map((x: any) => x.name), ['offsite', 'offsite-pw'], 'nothing was added');
});

test('an account holder backs up its own account to its destination and restores its snapshot byte-exact', () => {
  const j = ok(as(a, ['job', 'add', '--name', 'mine', '--destination', 'offsite', '--structure', 'incremental', '--items', 'files']));
  assert.equal(j.owner, a.username);
  assert.deepEqual(j.accounts, [a.username], 'an account holder\'s job backs up its own account');
  const before = snapshotTree(a.home, { skip: (p) => p.startsWith('tidemark-restore-') });
  const r = ok(as(a, ['backup', '--job', 'mine', '--wait']));
  assert.equal(r.results.length, 1);
  assert.equal(r.results[0].status, 'completed', JSON.stringify(r.results));
  ownSnapshot = r.snapshots[0];
  assert.ok(fs.existsSync(path.join(server.remoteRoot, a.username, ownSnapshot, 'manifest.json')), 'the snapshot is on the account\'s server');
  const listed = ok(as(a, ['snapshot', 'list']));
  assert.deepEqual(listed.map((s: any) => [s.id, s.account, s.destination]), [[ownSnapshot, a.username, 'offsite']]);
  const restored = ok(as(a, ['restore', ownSnapshot, '--into-folder', '--wait']));
  const folder = path.join(a.home, restored.folder);
  try {
    assert.deepEqual(diffTrees(before, snapshotTree(folder)), []);
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
});

test('an account holder cannot target a provider destination or another account in a job', () => {
  ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', providerDir]));
  ok(cli(dataDir, ['job', 'add', '--name', 'nightly', '--destination', 'disk', '--structure', 'archive', '--accounts', `${a.username},${b.username}`, '--items', 'files']));
  for (const r of ok(cli(dataDir, ['backup', '--job', 'nightly', '--wait'])).results) {
    assert.equal(r.status, 'completed');
    providerSnapshots[r.account] = r.snapshot;
  }
  failed(as(a, ['job', 'add', '--name', 'x', '--destination', 'disk', '--structure', 'archive']), /no destination named "disk"/);
  failed(as(a, ['job', 'add', '--name', 'x', '--destination', 'offsite', '--structure', 'archive', '--accounts', b.username]), /backs up only its own account/);
  failed(as(a, ['job', 'add', '--name', 'x', '--destination', 'offsite', '--structure', 'archive', '--all']), /only its own account/);
  failed(as(a, ['backup', '--job', 'nightly', '--wait']), /no job named "nightly"/);
  // Not even the provider can send another account's data to an account's server.
  failed(cli(dataDir, ['--owner', a.username, 'job', 'add', '--name', 'x', '--destination', 'offsite', '--structure', 'archive', '--accounts', b.username]),
    /belongs to account .*: its jobs back up that account only/);
  assert.deepEqual(ok(cli(dataDir, ['job', 'list'])).map((x: any) => [x.name, x.owner]), [['mine', a.username], ['nightly', 'root']]);
});

test("another account sees none of A's destinations, jobs or snapshots, and every attempt by name fails as not found and changes nothing", () => {
  const rootBefore = ok(cli(dataDir, ['--owner', a.username, 'destination', 'show', 'offsite']));
  const remoteBefore = fs.readdirSync(path.join(server.remoteRoot, a.username)).sort();
  assert.deepEqual(ok(as(b, ['destination', 'list'])), []);
  assert.deepEqual(ok(as(b, ['job', 'list'])), []);
  const bSnapshots = ok(as(b, ['snapshot', 'list']));
  assert.deepEqual(bSnapshots.map((s: any) => [s.id, s.account]), [[providerSnapshots[b.username], b.username]]);
  assert.deepEqual(ok(as(b, ['snapshot', 'list', '--account', a.username])), []);
  const notFound = /no destination named "offsite"/;
  for (const args of [
    ['destination', 'show', 'offsite'], ['destination', 'browse', 'offsite'], ['destination', 'browse', 'offsite', a.username],
    ['destination', 'validate', 'offsite'], ['destination', 'disable', 'offsite'], ['destination', 'enable', 'offsite'],
    ['destination', 'visibility', 'offsite', '--hidden'], ['destination', 'remove', 'offsite'], ['destination', 'remove', 'offsite', '--delete-data'],
    ['--owner', a.username, 'destination', 'remove', 'offsite', '--delete-data'], ['--owner', a.username, 'destination', 'show', 'offsite'],
    ['job', 'add', '--name', 'steal', '--destination', 'offsite', '--structure', 'archive'],
    ['snapshot', 'list', '--destination', 'offsite'],
  ]) failed(as(b, args), notFound);
  for (const args of [['job', 'show', 'mine'], ['job', 'remove', 'mine'], ['backup', '--job', 'mine', '--wait'], ['--owner', a.username, 'job', 'remove', 'mine']]) {
    failed(as(b, args), /no job named "mine"/);
  }
  const out = path.join(os.tmpdir(), `tidemark-b-${process.pid}.tar.gz`);
  for (const args of [['snapshot', 'show', ownSnapshot], ['snapshot', 'files', ownSnapshot], ['restore', ownSnapshot, '--wait'],
    ['download', ownSnapshot, '--out', out], ['restore', providerSnapshots[a.username]!, '--wait'], ['snapshot', 'files', providerSnapshots[a.username]!]]) {
    failed(as(b, args), /no snapshot /);
  }
  assert.ok(!fs.existsSync(out));
  // Nothing changed.
  const rootAfter = ok(cli(dataDir, ['--owner', a.username, 'destination', 'show', 'offsite']));
  assert.deepEqual({ ...rootAfter, space: null }, { ...rootBefore, space: null });
  assert.equal(rootAfter.enabled, true);
  assert.equal(rootAfter.snapshotsVisible, true);
  assert.deepEqual(fs.readdirSync(path.join(server.remoteRoot, a.username)).sort(), remoteBefore, 'nothing was deleted on A\'s server');
  assert.equal(ok(as(a, ['job', 'show', 'mine'])).destination, 'offsite');
  assert.deepEqual(ok(as(a, ['snapshot', 'list', '--destination', 'offsite'])).map((s: any) => s.id), [ownSnapshot]);
});

test('names are unique per owner: B may use the name A uses, and root tells them apart with --owner', () => {
  const d = ok(as(b, sshAdd('offsite', remoteB, keyAuth())));
  assert.equal(d.owner, b.username);
  failed(as(b, sshAdd('offsite', remoteB, keyAuth())), /a destination named "offsite" exists already/);
  failed(cli(dataDir, ['destination', 'show', 'offsite']), /several accounts have a destination named "offsite".*add --owner/);
  assert.equal(ok(cli(dataDir, ['--owner', b.username, 'destination', 'show', 'offsite'])).settings.path, remoteB);
  assert.equal(ok(cli(dataDir, ['--owner', a.username, 'destination', 'show', 'offsite'])).settings.path, server.remoteRoot);
  assert.equal(ok(as(b, ['destination', 'show', 'offsite'])).settings.path, remoteB, 'B finds its own');
  ok(as(b, ['job', 'add', '--name', 'mine', '--destination', 'offsite', '--structure', 'archive', '--items', 'files']));
  assert.deepEqual(ok(as(b, ['job', 'list'])).map((x: any) => [x.name, x.owner, x.destination]), [['mine', b.username, 'offsite']]);
  const ran = ok(as(b, ['backup', '--job', 'mine', '--wait']));
  assert.equal(ran.results[0].status, 'completed');
  assert.ok(fs.existsSync(path.join(remoteB, b.username, ran.snapshots[0], 'manifest.json')));
  assert.ok(!fs.existsSync(path.join(remoteB, a.username)), "A's data never goes to B's server");
  // A root destination of the same name is what root finds first.
  ok(cli(dataDir, ['destination', 'add', '--name', 'offsite', '--type', 'local', '--path', providerDir]));
  assert.equal(ok(cli(dataDir, ['destination', 'show', 'offsite'])).owner, 'root');
  assert.equal(ok(as(a, ['destination', 'show', 'offsite'])).owner, a.username, 'A still finds its own');
  ok(cli(dataDir, ['destination', 'remove', 'offsite']));
  assert.equal(ok(cli(dataDir, ['--owner', a.username, 'destination', 'show', 'offsite'])).owner, a.username, 'root removed its own, not A\'s');
});

test("an account holder never sees provider destinations' settings; of a visible one it sees its own account's snapshots only, of a hidden one none", () => {
  const listed = as(a, ['destination', 'list']);
  assert.deepEqual(ok(listed).map((x: any) => x.name), ['offsite', 'offsite-pw']);
  assert.ok(!listed.stdout.includes(providerDir), 'the provider\'s path is not shown');
  failed(as(a, ['destination', 'show', 'disk']), /no destination named "disk"/);
  failed(as(a, ['destination', 'browse', 'disk']), /no destination named "disk"/);
  const mineOnDisk = ok(as(a, ['snapshot', 'list', '--destination', 'disk']));
  assert.deepEqual(mineOnDisk.map((s: any) => [s.id, s.account]), [[providerSnapshots[a.username], a.username]]);
  assert.ok(ok(as(a, ['snapshot', 'list'])).every((s: any) => s.account === a.username));
  assert.equal(ok(as(a, ['snapshot', 'files', providerSnapshots[a.username]!])).length > 0, true);

  ok(cli(dataDir, ['destination', 'visibility', 'disk', '--hidden']));
  try {
    assert.deepEqual(ok(as(a, ['snapshot', 'list'])).map((s: any) => s.id), [ownSnapshot], 'only its own destination\'s snapshots remain');
    failed(as(a, ['snapshot', 'list', '--destination', 'disk']), /no destination named "disk"/);
    failed(as(a, ['restore', providerSnapshots[a.username]!, '--wait']), /no snapshot /);
    failed(as(a, ['download', providerSnapshots[a.username]!, '--out', path.join(os.tmpdir(), `tidemark-a-${process.pid}.tar.gz`)]), /no snapshot /);
    failed(as(a, ['destination', 'visibility', 'offsite', '--hidden']), /only the provider hides or shows snapshots/);
  } finally {
    ok(cli(dataDir, ['destination', 'visibility', 'disk', '--visible']));
  }
});

test("databases are never restored from an account's destination (the account controls the dump)", () => {
  for (const r of [as(a, ['restore', ownSnapshot, '--database', `${a.username}_shop`, '--wait']),
    cli(dataDir, ['restore', ownSnapshot, '--database', `${a.username}_shop`, '--wait'])]) {
    failed(r, /databases are not restored from destination "offsite" of account/);
  }
});

test("turning the feature off stops new backups to account destinations, whose snapshots stay restorable", () => {
  config({ enabled: false, allowHosts: ['127.0.0.1'] });
  const before = ok(cli(dataDir, ['snapshot', 'list']));
  failed(as(a, ['backup', '--job', 'mine', '--wait']), /takes no new backups: the provider has turned off account-level destinations/);
  failed(cli(dataDir, ['--owner', a.username, 'backup', '--job', 'mine', '--wait']), /turned off account-level destinations/);
  failed(as(a, ['job', 'add', '--name', 'again', '--destination', 'offsite', '--structure', 'archive']), /turned off account-level destinations/);
  failed(as(b, sshAdd('another', remoteB, keyAuth())), /the provider does not allow account-level destinations/);
  assert.deepEqual(ok(cli(dataDir, ['snapshot', 'list'])), before, 'no snapshot was added or lost');
  assert.deepEqual(ok(as(a, ['destination', 'list'])).map((x: any) => x.name), ['offsite', 'offsite-pw'], 'its destinations stay');
  const page = path.join(a.home, 'public_html/index.php');
  const original = fs.readFileSync(page);
  fs.writeFileSync(page, 'defaced');
  ok(as(a, ['restore', ownSnapshot, '--path', 'public_html/index.php', '--wait']));
  assert.deepEqual(fs.readFileSync(page), original);
  // The provider's own jobs are not affected.
  assert.equal(ok(cli(dataDir, ['backup', '--job', 'nightly', '--account', a.username, '--wait'])).results[0].status, 'completed');
});

test('--as-account and --owner are refused where they do not apply', () => {
  const owner = cli(dataDir, ['--owner', a.username, 'destination', 'add', '--name', 'x', '--type', 'local', '--path', providerDir]);
  assert.equal(owner.code, 2);
  assert.match(owner.json.error, /--owner does not apply to destination add/);
  const bad = cli(dataDir, ['--as-account', '../etc', 'destination', 'list']);
  assert.equal(bad.code, 2);
  assert.match(bad.json.error, /not an account name/);
  assert.deepEqual(ok(cli(dataDir, ['destination', 'list'])).map((x: any) => x.name).filter((n: string) => n === 'x'), []);
});

test('a store made before owners existed migrates with its data and references intact', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-store-'));
  try {
    const old = new Database(path.join(dir, 'tidemark.sqlite'));
    old.pragma('foreign_keys = ON');
    await m0001.up({ context: old });
    old.exec(`CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL);
      INSERT INTO schema_migrations VALUES ('0001-initial', '2026-01-01T00:00:00Z');
      INSERT INTO destinations (id, name, type, settings, created_at) VALUES (7, 'disk', 'local', '{"path":"/x"}', 't');
      INSERT INTO jobs (id, name, destination_id, structure, accounts, items, excludes, created_at) VALUES (3, 'nightly', 7, 'archive', '{"all":true}', '["files"]', '[]', 't');
      INSERT INTO snapshots (id, destination_id, account, job_id, structure, status, started_at, finished_at, items, files, bytes, stored_bytes, databases)
        VALUES ('s1', 7, 'alice', 3, 'archive', 'completed', 't', 't', '["files"]', 1, 2, 3, '[]');`);
    old.close();
    const store = await openStore(dir);
    try {
      assert.deepEqual((store.db.prepare('SELECT name FROM schema_migrations ORDER BY name').all() as { name: string }[]).map((r) => r.name), ['0001-initial', '0002-owners', '0003-sessions', '0004-api-tokens', '0005-schedules', '0006-queue', '0007-account-preferences', '0008-account-identities', '0009-task-log-audience', '0010-binlogs', '0011-sites-frequent-schedules']);
      assert.equal(store.db.pragma('foreign_keys', { simple: true }), 1, 'foreign keys are on again');
      assert.deepEqual(store.db.pragma('foreign_key_check'), []);
      const d = store.destinations.byName('disk')!;
      assert.equal(d.id, 7);
      assert.equal(d.owner, 'root');
      const j = store.jobs.byName('nightly')!;
      assert.deepEqual([j.id, j.owner, j.destinationId], [3, 'root', 7]);
      assert.equal(store.snapshots.list()[0]!.jobId, 3);
      store.destinations.insert({ ...d, owner: 'alice' });
      assert.throws(() => store.destinations.insert({ ...d, owner: 'alice' }), /UNIQUE/);
      store.jobs.insert({ ...j, owner: 'alice' });
      assert.throws(() => store.jobs.insert({ ...j }), /UNIQUE/);
      assert.throws(() => store.jobs.insert({ ...j, owner: 'bob', destinationId: 999 }), /FOREIGN KEY/, 'references are enforced on the new table');
      store.jobs.remove(3);
      assert.equal(store.snapshots.list()[0]!.jobId, null, 'ON DELETE SET NULL still holds');
    } finally {
      store.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const GENERIC = new RegExp(ACCOUNT_CONNECT_FAILED.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
const connectFailures = (): { target: string; detail: string }[] =>
  ok(cli(dataDir, ['activity'])).filter((e: any) => e.action === 'destination.connect-failed');

test('regression: an account destination made the server connect to loopback (127.0.0.1): refused by default with the generic message', () => {
  config({ enabled: true, maxPerAccount: 5 });
  const probes = (): { detail: string }[] => connectFailures().filter((e) => e.target === `${b.username}/probe`);
  const before = probes().length;
  const r = as(b, sshAdd('probe', remoteB, keyAuth()));
  failed(r, GENERIC);
  assert.doesNotMatch(r.json.error, /127\.0\.0\.1|loopback|refused the connection \(/, 'the account learns nothing about why');
  const names = (): string[] => ok(as(b, ['destination', 'list'])).map((x: any) => x.name);
  assert.ok(!names().includes('probe'), 'nothing was added');
  const logged = probes();
  assert.equal(logged.length, before + 1, 'the reason is in the provider\'s log');
  assert.match(logged[0]!.detail, /127\.0\.0\.1 is a loopback, private, link-local or reserved address/);
  assert.equal(ok(as(b, ['activity'])).filter((e: any) => e.action === 'destination.connect-failed').length, 0, 'the account does not see the reason');
  // An existing destination is checked at every connection: the allow-list removed, a's next backup stops.
  const run = as(a, ['backup', '--job', 'mine', '--wait']);
  assert.equal(run.code, 1);
  assert.match(JSON.stringify(run.json), GENERIC);
});

test('regression: a host name resolving to a private address (localhost) reached the server\'s own services', () => {
  config({ enabled: true, maxPerAccount: 5 });
  const args = sshAdd('by-name', remoteB, keyAuth()).map((x) => (x === '127.0.0.1' ? 'localhost' : x));
  failed(as(b, args), GENERIC);
  assert.match(connectFailures()[0]!.detail, /localhost: .*(127\.0\.0\.1|::1) is a loopback/);
  for (const host of ['0.0.0.0', '169.254.169.254', '10.1.2.3', '::1', '::ffff:127.0.0.1', '100.64.0.1', 'fd00::1', '127.1']) {
    failed(as(b, sshAdd('probe', remoteB, keyAuth()).map((x) => (x === '127.0.0.1' ? host : x))), GENERIC);
  }
  assert.deepEqual(ok(as(b, ['destination', 'list'])).map((x: any) => x.name).filter((n: string) => n !== 'offsite'), []);
});

test('regression: connection failures of an account destination told the account why (port scan): one generic error for all', () => {
  config({ enabled: true, maxPerAccount: 5, allowHosts: ['127.0.0.0/8'] });
  const wrongPassword = path.join(secretsDir, 'wrong-password');
  fs.writeFileSync(wrongPassword, 'not-the-password\n', { mode: 0o600 });
  const attempts: [string, string[]][] = [
    ['closed port', sshAdd('p1', remoteB, keyAuth()).map((x) => (x === String(server.port) ? '1' : x))],
    ['wrong password', sshAdd('p2', remoteB, ['--password-file', wrongPassword])],
    ['wrong host key', [...sshAdd('p3', remoteB, keyAuth()), '--host-key', `SHA256:${'A'.repeat(43)}`]],
  ];
  const messages = attempts.map(([what, args]) => {
    const r = as(b, args);
    assert.equal(r.code, 1, what);
    return (r.json.error as string).replace(/"p\d"/, '"p"');
  });
  for (const m of messages) assert.match(m, GENERIC);
  assert.equal(new Set(messages).size, 1, `every failure reads the same: ${messages.join(' | ')}`);
  const reasons = connectFailures().slice(0, 3).map((e) => e.detail).join('\n');
  assert.match(reasons, /connection refused/);
  assert.match(reasons, /authentication failed/);
  assert.match(reasons, /host key .* has changed/);
});

test('allow-listed by the provider, an account destination on loopback works; denyHosts wins; allowPorts limits ports', () => {
  config({ enabled: true, maxPerAccount: 5, allowHosts: ['127.0.0.1'], denyHosts: [] });
  ok(as(b, sshAdd('allowed', remoteB, keyAuth())));
  ok(as(b, ['destination', 'remove', 'allowed']));
  config({ enabled: true, maxPerAccount: 5, allowHosts: ['127.0.0.1'], denyHosts: ['127.0.0.0/8'] });
  failed(as(b, sshAdd('denied', remoteB, keyAuth())), GENERIC);
  config({ enabled: true, maxPerAccount: 5, allowHosts: ['127.0.0.1'], allowPorts: [22] });
  failed(as(b, sshAdd('port', remoteB, keyAuth())), GENERIC);
  assert.match(connectFailures()[0]!.detail, /port \d+ is not in accountDestinations\.allowPorts/);
  config({ enabled: true, maxPerAccount: 5, allowHosts: ['not a host!'] });
  failed(cli(dataDir, ['destination', 'list']), /allowHosts.*not an address, range or host name/);
});

test("the provider's own SSH destinations are not limited by the account rules and keep their detailed errors", () => {
  config({ enabled: true, maxPerAccount: 5 });
  const add = ['destination', 'add', '--name', 'provider-ssh', '--type', 'ssh', '--host', '127.0.0.1', '--port', String(server.port),
    '--user', server.user, '--path', remoteB, ...keyAuth()];
  ok(cli(dataDir, add));
  const closed = cli(dataDir, add.map((x) => (x === String(server.port) ? '1' : x === 'provider-ssh' ? 'closed' : x)));
  failed(closed, /connection refused/);
  ok(cli(dataDir, ['destination', 'remove', 'provider-ssh']));
});
