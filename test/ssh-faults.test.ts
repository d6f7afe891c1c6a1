import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { diffTrees, hashTree, snapshotTree, type TreeEntry } from './support/tree.js';
import { cli, makeDataDir, ok, type CliResult } from './support/cli.js';
import { startTestSshServer, type TestSshServer } from './support/sshd.js';

let server: TestSshServer;
let homeRoot: string;
let account: TestAccount;
let dataDir: string;
let secretsDir: string;
const mounts: string[] = [];

before(async () => {
  server = await startTestSshServer({ allowCommands: false });
  homeRoot = makeHomeRoot();
  account = createAccount(homeRoot);
  fs.mkdirSync(path.join(account.home, 'public_html'));
  fs.writeFileSync(path.join(account.home, 'public_html/index.php'), '<?php echo "hello";\n');
  fs.writeFileSync(path.join(account.home, 'notes.txt'), 'small\n');
  fs.writeFileSync(path.join(account.home, 'random.bin'), crypto.randomBytes(64 << 10));
  execFileSync('chown', ['-R', `${account.uid}:${account.gid}`, account.home]);
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  secretsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-secrets-'));
  fs.writeFileSync(path.join(secretsDir, 'key'), server.privateKey, { mode: 0o600 });
  fs.writeFileSync(path.join(secretsDir, 'password'), `${server.password}\n`, { mode: 0o600 });
});

after(async () => {
  // Mounts first: the server's user (and its home, where they live) is deleted by stop().
  for (const m of mounts.splice(0)) {
    try { execFileSync('umount', [m], { stdio: 'pipe' }); } catch {
      try { execFileSync('umount', ['--lazy', m], { stdio: 'pipe' }); } catch { /* not mounted */ }
    }
  }
  if (account) removeAccount(account);
  for (const d of [homeRoot, dataDir, secretsDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
  await server?.stop();
});

const sshArgs = (name: string, remotePath: string, auth: string[]): string[] => ['destination', 'add', '--name', name, '--type', 'ssh',
  '--host', '127.0.0.1', '--port', String(server.port), '--user', server.user, '--path', remotePath, ...auth];

const skipRestores = (rel: string): boolean => rel.startsWith('tidemark-restore-');

const partials = (accountDir: string): string[] => (fs.existsSync(accountDir) ? fs.readdirSync(accountDir).filter((n) => n.startsWith('.partial-')) : []);

/** The run failed as a whole: exit 1, one failed task for the account, no snapshot; returns its message. */
function failedRun(r: CliResult): string {
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.ok(r.json?.results, `a result per account: ${r.stdout}${r.stderr}`);
  assert.deepEqual(r.json.snapshots, []);
  assert.equal(r.json.results.length, 1);
  const [result] = r.json.results;
  assert.equal(result.account, account.username);
  assert.equal(result.status, 'failed');
  assert.equal(result.snapshot, null);
  assert.equal(typeof result.task, 'number');
  assert.equal(typeof result.error, 'string');
  return result.error as string;
}

/** Restores a snapshot into a new folder of the home and compares it with the tree taken at backup time. */
function assertRestoresExactly(snapshot: string, expected: Map<string, TreeEntry>): void {
  const restored = ok(cli(dataDir, ['restore', snapshot, '--into-folder', '--wait']));
  const folder = path.join(account.home, restored.folder);
  try {
    assert.deepEqual(diffTrees(expected, snapshotTree(folder)), []);
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

test('a password changed on the server fails the backup with "authentication failed", never printing a password, and keeps the previous snapshot', async () => {
  ok(cli(dataDir, sshArgs('pw', server.remoteRoot, ['--password-file', path.join(secretsDir, 'password')])));
  ok(cli(dataDir, ['job', 'add', '--name', 'pw-inc', '--destination', 'pw', '--structure', 'incremental', '--accounts', account.username, '--items', 'files']));
  const tree = snapshotTree(account.home, { skip: skipRestores });
  const first = ok(cli(dataDir, ['backup', '--job', 'pw-inc', '--wait']));
  assert.equal(first.results[0].status, 'completed');
  const firstId: string = first.snapshots[0];
  const accountDir = path.join(server.remoteRoot, account.username);
  const intact = hashTree(path.join(accountDir, firstId));
  const listed = ok(cli(dataDir, ['snapshot', 'list', '--destination', 'pw']));

  const oldPassword = server.password;
  const newPassword = crypto.randomBytes(12).toString('hex');
  await server.setPassword(newPassword);
  fs.appendFileSync(path.join(account.home, 'notes.txt'), 'changed after the first run\n');
  const r = cli(dataDir, ['backup', '--job', 'pw-inc', '--wait']);
  const message = failedRun(r);
  assert.match(message, /authentication failed for tmssh\w+@127\.0\.0\.1:\d+/);
  assert.match(message, /destination "pw"/);
  for (const secret of [oldPassword, newPassword]) {
    assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), 'no password is printed');
  }
  assert.deepEqual(ok(cli(dataDir, ['snapshot', 'list', '--destination', 'pw'])), listed, 'nothing new is listed');
  assert.deepEqual(partials(accountDir), []);
  assert.equal(hashTree(path.join(accountDir, firstId)), intact, 'the previous snapshot is untouched');
  const shown = cli(dataDir, ['destination', 'show', 'pw']);
  assert.ok(!shown.stdout.includes(oldPassword) && !shown.stdout.includes(newPassword));

  // With the password set back, the previous snapshot restores byte for byte.
  await server.setPassword(oldPassword);
  assertRestoresExactly(firstId, tree);
});

test('a full remote disk fails the backup with "no space left on the destination", keeps the previous snapshot, and the next run succeeds once there is room', async () => {
  const uid = execFileSync('id', ['-u', server.user], { encoding: 'utf8' }).trim();
  const gid = execFileSync('id', ['-g', server.user], { encoding: 'utf8' }).trim();
  const small = path.join(server.home, 'small-disk');
  fs.mkdirSync(small);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=2m,mode=0700,uid=${uid},gid=${gid}`, 'tidemark-test-full', small]);
  mounts.push(small);
  ok(cli(dataDir, sshArgs('tiny', small, ['--key-file', path.join(secretsDir, 'key')])));
  ok(cli(dataDir, ['job', 'add', '--name', 'tiny-inc', '--destination', 'tiny', '--structure', 'incremental', '--accounts', account.username, '--items', 'files']));
  const tree = snapshotTree(account.home, { skip: skipRestores });
  const first = ok(cli(dataDir, ['backup', '--job', 'tiny-inc', '--wait']));
  assert.equal(first.results[0].status, 'completed');
  const firstId: string = first.snapshots[0];
  const accountDir = path.join(small, account.username);
  const intact = hashTree(path.join(accountDir, firstId));
  const listed = ok(cli(dataDir, ['snapshot', 'list', '--destination', 'tiny']));

  // 3 MiB of incompressible data does not fit in what is left of 2 MiB.
  const big = path.join(account.home, 'big.bin');
  fs.writeFileSync(big, crypto.randomBytes(3 << 20));
  fs.chownSync(big, account.uid, account.gid);
  try {
    const message = failedRun(cli(dataDir, ['backup', '--job', 'tiny-inc', '--wait']));
    assert.match(message, /no space left on the destination/);
    assert.doesNotMatch(message, /I\/O error|: Failure/);
    assert.deepEqual(ok(cli(dataDir, ['snapshot', 'list', '--destination', 'tiny'])), listed, 'nothing new is listed');
    assert.deepEqual(partials(accountDir), [], 'the broken run was removed');
    assert.equal(hashTree(path.join(accountDir, firstId)), intact, 'the previous snapshot is untouched');
    assertRestoresExactly(firstId, tree);

    execFileSync('mount', ['-o', 'remount,size=16m', small]);
    const treeNow = snapshotTree(account.home, { skip: skipRestores });
    const next = ok(cli(dataDir, ['backup', '--job', 'tiny-inc', '--wait']));
    assert.equal(next.results[0].status, 'completed');
    assert.ok(next.results[0].storedBytes >= 3 << 20);
    assert.deepEqual(partials(accountDir), []);
    assert.equal(hashTree(path.join(accountDir, firstId)), intact);
    assertRestoresExactly(next.snapshots[0], treeNow);
  } finally {
    fs.rmSync(big, { force: true });
  }
});

test('an SSH server refusing connections fails the backup with "cannot reach", and leaves the destination and its snapshots as they were', async () => {
  ok(cli(dataDir, sshArgs('down', server.remoteRoot, ['--key-file', path.join(secretsDir, 'key')])));
  ok(cli(dataDir, ['job', 'add', '--name', 'down-archive', '--destination', 'down', '--structure', 'archive', '--accounts', account.username, '--items', 'files']));
  const tree = snapshotTree(account.home, { skip: skipRestores });
  const first = ok(cli(dataDir, ['backup', '--job', 'down-archive', '--wait']));
  assert.equal(first.results[0].status, 'completed');
  const firstId: string = first.snapshots[0];
  const accountDir = path.join(server.remoteRoot, account.username);
  const intact = hashTree(path.join(accountDir, firstId));
  const listed = ok(cli(dataDir, ['snapshot', 'list', '--destination', 'down']));
  // What a run must not change; reachability and free space are live and do change.
  const settled = (list: Record<string, unknown>[]): unknown[] => list.map(({ reachable: _r, problem: _p, space: _s, spaceKnown: _k, ...rest }) => rest);
  const destinations = settled(ok(cli(dataDir, ['destination', 'list'])));

  await server.kill();
  try {
    const message = failedRun(cli(dataDir, ['backup', '--job', 'down-archive', '--wait']));
    assert.match(message, /destination "down": cannot reach tmssh\w+@127\.0\.0\.1:\d+.*connection refused/);
    assert.deepEqual(ok(cli(dataDir, ['snapshot', 'list', '--destination', 'down'])), listed, 'nothing new is listed');
    assert.deepEqual(settled(ok(cli(dataDir, ['destination', 'list']))), destinations, 'the destination is still there, still enabled');
    const shown = ok(cli(dataDir, ['destination', 'show', 'down']));
    assert.equal(shown.enabled, true);
    assert.equal(shown.reachable, false);
    assert.match(shown.problem, /cannot reach/);
  } finally {
    await server.restart();
  }
  assert.deepEqual(partials(accountDir), []);
  assert.equal(hashTree(path.join(accountDir, firstId)), intact, 'the previous snapshot is untouched');
  assertRestoresExactly(firstId, tree);
  const again = ok(cli(dataDir, ['backup', '--job', 'down-archive', '--wait']));
  assert.equal(again.results[0].status, 'completed');
});
