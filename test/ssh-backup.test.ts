import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { buildTrickyTree } from './support/tricky-tree.js';
import { diffTrees, snapshotTree } from './support/tree.js';
import { cli, makeDataDir, ok } from './support/cli.js';
import { startTestSshServer, type TestSshServer } from './support/sshd.js';

let server: TestSshServer;
let homeRoot: string;
let account: TestAccount;
let dataDir: string;
let secretsDir: string;
let remote: string;

before(async () => {
  server = await startTestSshServer({ allowCommands: false });
  homeRoot = makeHomeRoot();
  account = createAccount(homeRoot);
  buildTrickyTree(account);
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  secretsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-secrets-'));
  fs.writeFileSync(path.join(secretsDir, 'key'), server.privateKey, { mode: 0o600 });
  fs.writeFileSync(path.join(secretsDir, 'password'), `${server.password}\n`, { mode: 0o600 });
  remote = server.remoteRoot;
});

after(async () => {
  removeAccount(account);
  for (const d of [homeRoot, dataDir, secretsDir]) fs.rmSync(d, { recursive: true, force: true });
  await server?.stop();
});

const sshArgs = (name: string, auth: string[]): string[] => ['destination', 'add', '--name', name, '--type', 'ssh', '--host', '127.0.0.1',
  '--port', String(server.port), '--user', server.user, '--path', remote, ...auth];

test('an SSH destination is added with its host key pinned and its secrets masked and encrypted', () => {
  const d = ok(cli(dataDir, sshArgs('offsite', ['--key-file', path.join(secretsDir, 'key')])));
  assert.equal(d.type, 'ssh');
  assert.equal(d.settings.privateKey, '********');
  assert.equal(d.settings.hostKeyFingerprint, server.hostKeyFingerprint);
  assert.equal(d.reachable, true);
  const p = ok(cli(dataDir, sshArgs('offsite-pw', ['--password-file', path.join(secretsDir, 'password')])));
  assert.equal(p.settings.password, '********');
  const stored = fs.readFileSync(path.join(dataDir, 'tidemark.sqlite')).toString('latin1');
  const keyLine = server.privateKey.split('\n')[1]!;
  assert.ok(!stored.includes(keyLine), 'the private key is not stored in clear');
  assert.ok(!stored.includes(server.password), 'the password is not stored in clear');
  const shown = cli(dataDir, ['destination', 'show', 'offsite-pw']);
  assert.ok(!shown.stdout.includes(server.password));
  const bad = cli(dataDir, ['destination', 'add', '--name', 'nope', '--type', 'ssh', '--host', '127.0.0.1', '--port', '70000', '--user', server.user, '--path', remote, '--password-file', path.join(secretsDir, 'password')]);
  assert.equal(bad.code, 2, 'a malformed command line');
  assert.match(bad.json.error, /--port.*a whole number from 1 to 65535/);
});

for (const structure of ['incremental', 'archive', 'compressed'] as const) {
  test(`${structure} over SSH: byte-exact round trip`, () => {
    ok(cli(dataDir, ['job', 'add', '--name', `ssh-${structure}`, '--destination', 'offsite', '--structure', structure, '--accounts', account.username, '--items', 'files']));
    const before = snapshotTree(account.home, { skip: (p) => p.startsWith('tidemark-restore-') });
    const r = ok(cli(dataDir, ['backup', '--job', `ssh-${structure}`, '--wait']));
    assert.equal(r.results[0].status, 'completed', JSON.stringify(r.results));
    const restored = ok(cli(dataDir, ['restore', r.snapshots[0], '--into-folder', '--wait']));
    const folder = path.join(account.home, restored.folder);
    try {
      assert.deepEqual(diffTrees(before, snapshotTree(folder)), []);
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });
}

test('a second incremental run over SSH shares unchanged files as hard links on the server', () => {
  fs.writeFileSync(path.join(account.home, 'public_html/index.php'), 'changed');
  const r = ok(cli(dataDir, ['backup', '--job', 'ssh-incremental', '--wait']));
  assert.equal(r.results[0].storedBytes, 'changed'.length);
  const blobs = path.join(remote, account.username, r.snapshots[0], 'files');
  const counts: number[] = [];
  for (const bucket of fs.readdirSync(blobs)) for (const b of fs.readdirSync(path.join(blobs, bucket))) counts.push(fs.statSync(path.join(blobs, bucket, b)).nlink);
  assert.equal(counts.filter((n) => n === 1).length, 1, 'only the changed file is new');
  assert.ok(counts.filter((n) => n === 2).length >= 10);
});

test('a backup of one account over SSH logs in once: the check before the run hands its connection to the account', () => {
  const logins = (): number => (fs.readFileSync(server.logFile, 'utf8').match(/Accepted (publickey|password) for /g) ?? []).length;
  ok(cli(dataDir, ['job', 'add', '--name', 'ssh-once', '--destination', 'offsite', '--structure', 'incremental', '--accounts', account.username, '--items', 'files']));
  for (const run of [1, 2]) {
    const before = logins();
    const r = ok(cli(dataDir, ['backup', '--job', 'ssh-once', '--wait']));
    assert.equal(r.results[0].status, 'completed', JSON.stringify(r.results));
    assert.ok(run === 1 || r.results[0].storedBytes === 0, 'the second run links everything');
    assert.equal(logins() - before, 1, `run ${run}: ${server.logTail()}`);
  }
});

test('a changed host key makes the backup fail clearly and lists nothing new', async () => {
  const beforeList = ok(cli(dataDir, ['snapshot', 'list', '--destination', 'offsite']));
  await server.rotateHostKey();
  const r = cli(dataDir, ['backup', '--job', 'ssh-archive', '--wait']);
  assert.equal(r.code, 1);
  assert.equal(r.json.results[0].status, 'failed');
  assert.match(r.json.results[0].error, /host key of 127\.0\.0\.1:\d+ has changed/);
  assert.deepEqual(ok(cli(dataDir, ['snapshot', 'list', '--destination', 'offsite'])), beforeList);
});

test('the SSH server dying mid-backup fails the task clearly, lists nothing, and a later run succeeds', async () => {
  const { execFileSync } = await import('node:child_process');
  const { cliAsync } = await import('./support/cli.js');
  // Accept the rotated key again with a fresh destination, then give the run something to chew on.
  ok(cli(dataDir, sshArgs('offsite2', ['--key-file', path.join(secretsDir, 'key')])));
  ok(cli(dataDir, ['job', 'add', '--name', 'ssh-kill', '--destination', 'offsite2', '--structure', 'archive', '--accounts', account.username, '--items', 'files']));
  execFileSync('dd', ['if=/dev/urandom', `of=${path.join(account.home, 'large.bin')}`, 'bs=1M', 'count=200', 'status=none']);
  fs.chownSync(path.join(account.home, 'large.bin'), account.uid, account.gid);
  const before = ok(cli(dataDir, ['snapshot', 'list', '--destination', 'offsite2']));
  const run = cliAsync(dataDir, ['backup', '--job', 'ssh-kill', '--wait']);
  const accountDir = path.join(remote, account.username);
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline && !(fs.existsSync(accountDir) && fs.readdirSync(accountDir).some((n) => n.startsWith('.partial-')))) {
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, 200));
  await server.kill();
  const result = await run.result;
  assert.equal(result.code, 1, result.stdout + result.stderr);
  assert.equal(result.json.results[0].status, 'failed');
  assert.match(result.json.results[0].error, /connection to .* was closed|cannot reach|ECONNRESET/);
  await server.restart();
  assert.deepEqual(ok(cli(dataDir, ['snapshot', 'list', '--destination', 'offsite2'])), before, 'the broken run is not listed');
  const again = ok(cli(dataDir, ['backup', '--job', 'ssh-kill', '--wait']));
  assert.equal(again.results[0].status, 'completed');
  assert.deepEqual(fs.readdirSync(accountDir).filter((n) => n.startsWith('.partial-')), [], 'the leftover was cleaned up');
  fs.rmSync(path.join(account.home, 'large.bin'));
});

test('validate over SSH reports the host key, and refuses a server whose key changed since it was pinned', () => {
  const good = ok(cli(dataDir, ['destination', 'validate', 'offsite2']));
  assert.equal(good.ok, true);
  assert.equal(good.hostKeyFingerprint, server.hostKeyFingerprint);
  assert.ok(good.space.freeBytes > 0);
  const stale = cli(dataDir, ['destination', 'validate', 'offsite']);
  assert.equal(stale.code, 1);
  assert.match(stale.json.error, /host key .* has changed/);
});
