import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, cliAsync, makeDataDir, makeDestinationDir, ok } from './support/cli.js';
import { hashTree } from './support/tree.js';

let homeRoot: string;
let account: TestAccount;
let dataDir: string;
let destDir: string;
const mounts: string[] = [];

before(() => {
  homeRoot = makeHomeRoot();
  account = createAccount(homeRoot);
  fs.writeFileSync(path.join(account.home, 'small.txt'), 'small');
  fs.writeFileSync(path.join(account.home, 'random.bin'), crypto.randomBytes(3 << 20));
  execFileSync('chown', ['-R', `${account.uid}:${account.gid}`, account.home]);
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  destDir = makeDestinationDir();
  ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
  ok(cli(dataDir, ['job', 'add', '--name', 'inc', '--destination', 'disk', '--structure', 'incremental', '--accounts', account.username, '--items', 'files']));
});

after(() => {
  for (const m of mounts) { try { execFileSync('umount', [m]); } catch { /* not mounted */ } fs.rmSync(m, { recursive: true, force: true }); }
  removeAccount(account);
  for (const d of [homeRoot, dataDir, destDir]) fs.rmSync(d, { recursive: true, force: true });
});

test('a backup killed mid-run leaves no snapshot, keeps the previous one intact, and the next run succeeds', async () => {
  const first = ok(cli(dataDir, ['backup', '--job', 'inc', '--wait'])).snapshots[0];
  const firstDir = path.join(destDir, account.username, first);
  const before = hashTree(firstDir);
  // A large sparse file keeps the next run busy long enough to be killed in the middle.
  execFileSync('truncate', ['-s', '3G', path.join(account.home, 'sparse.img')]);
  fs.chownSync(path.join(account.home, 'sparse.img'), account.uid, account.gid);
  const run = cliAsync(dataDir, ['backup', '--job', 'inc', '--wait']);
  const accountDir = path.join(destDir, account.username);
  const deadline = Date.now() + 30000;
  let partial: string | undefined;
  while (Date.now() < deadline) {
    partial = fs.readdirSync(accountDir).find((n) => n.startsWith('.partial-'));
    if (partial && fs.existsSync(path.join(accountDir, partial, 'files'))) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(partial, 'the second run started writing');
  await new Promise((r) => setTimeout(r, 300));
  run.child.kill('SIGKILL');
  await run.result;
  const list = ok(cli(dataDir, ['snapshot', 'list', '--account', account.username])).map((s: any) => s.id);
  assert.deepEqual(list, [first], 'the killed run is not listed');
  assert.equal(hashTree(firstDir), before, 'the previous snapshot is untouched');
  fs.rmSync(path.join(account.home, 'sparse.img'));
  const next = ok(cli(dataDir, ['backup', '--job', 'inc', '--wait']));
  assert.equal(next.results[0].status, 'completed');
  assert.deepEqual(fs.readdirSync(accountDir).filter((n) => n.startsWith('.partial-')), [], 'leftovers are cleaned up');
  assert.equal(hashTree(firstDir), before);
});

test('a full destination disk fails the backup clearly and lists nothing', () => {
  const small = fs.mkdtempSync('/tmp/tidemark-full-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', small]);
  mounts.push(small);
  ok(cli(dataDir, ['destination', 'add', '--name', 'tiny', '--type', 'local', '--path', small]));
  ok(cli(dataDir, ['job', 'add', '--name', 'to-tiny', '--destination', 'tiny', '--structure', 'archive', '--accounts', account.username, '--items', 'files']));
  const r = cli(dataDir, ['backup', '--job', 'to-tiny', '--wait']);
  assert.equal(r.code, 1);
  assert.equal(r.json.results[0].status, 'failed');
  assert.match(r.json.results[0].error, /no space left/);
  assert.deepEqual(ok(cli(dataDir, ['snapshot', 'list', '--destination', 'tiny'])), []);
  assert.deepEqual(fs.readdirSync(path.join(small, account.username)), [], 'the partial run was removed');
});

test('bad input gives a clear error and a non-zero exit', () => {
  const cases: [string[], RegExp][] = [
    [['job', 'add', '--name', 'x', '--destination', 'disk', '--structure', 'incremental', '--accounts', 'nosuchuser1'], /unknown account "nosuchuser1"/],
    [['backup', '--job', 'inc', '--account', 'nosuchuser1', '--wait'], /not part of job|unknown account/],
    [['destination', 'add', '--name', 'gone', '--type', 'local', '--path', '/nonexistent/tidemark'], /does not exist/],
    [['destination', 'add', '--name', 'rel', '--type', 'local', '--path', 'relative/dir'], /path must be absolute/],
    [['job', 'add', '--name', 'y', '--destination', 'disk', '--structure', 'zip', '--accounts', account.username], /--structure.*incremental, archive, compressed/],
    [['job', 'add', '--name', 'z', '--destination', 'nowhere', '--structure', 'archive', '--all'], /no destination named "nowhere"/],
    [['destination', 'remove', 'disk'], /used by job\(s\): inc/],
    [['restore', '20990101T000000Z-ffff', '--wait'], /no snapshot 20990101T000000Z-ffff/],
  ];
  for (const [args, message] of cases) {
    const r = cli(dataDir, args);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.json?.error ?? '', message, args.join(' '));
  }
  const ro = fs.mkdtempSync('/tmp/tidemark-ro-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m,mode=0700', 'tmpfs', ro]);
  mounts.push(ro);
  const r = cli(dataDir, ['destination', 'add', '--name', 'ro', '--type', 'local', '--path', ro]);
  assert.equal(r.code, 1);
  assert.match(r.json.error, /not writable \(EROFS\)/);
});
