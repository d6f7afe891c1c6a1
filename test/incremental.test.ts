import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';
import { execFileSync } from 'node:child_process';

let homeRoot: string;
let account: TestAccount;
let dataDir: string;
let destDir: string;

before(() => {
  homeRoot = makeHomeRoot();
  account = createAccount(homeRoot);
  const h = account.home;
  for (const skel of fs.readdirSync(h)) fs.rmSync(path.join(h, skel), { recursive: true });
  for (let i = 0; i < 200; i++) {
    fs.mkdirSync(path.join(h, `site/dir${i % 10}`), { recursive: true });
    fs.writeFileSync(path.join(h, `site/dir${i % 10}/file${i}.txt`), crypto.randomBytes(2000 + i));
  }
  fs.mkdirSync(path.join(h, 'cache/tmp'), { recursive: true });
  fs.writeFileSync(path.join(h, 'cache/tmp/big.tmp'), crypto.randomBytes(100000));
  fs.writeFileSync(path.join(h, 'site/error.log'), 'log');
  fs.mkdirSync(path.join(h, 'private'));
  fs.writeFileSync(path.join(h, 'private/.donotbackup'), '');
  fs.writeFileSync(path.join(h, 'private/secret.txt'), 'not for backups');
  fs.mkdirSync(path.join(h, 'site/donotbackup'));
  fs.writeFileSync(path.join(h, 'site/donotbackup/x.txt'), 'skipped by name');
  execFileSync('chown', ['-R', `${account.uid}:${account.gid}`, h]);
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  destDir = makeDestinationDir();
  ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
  ok(cli(dataDir, ['job', 'add', '--name', 'inc', '--destination', 'disk', '--structure', 'incremental', '--accounts', account.username,
    '--items', 'files', '--exclude', 'cache', '--exclude', '*.log']));
});

after(() => {
  removeAccount(account);
  for (const d of [homeRoot, dataDir, destDir]) fs.rmSync(d, { recursive: true, force: true });
});

interface IndexFile { path: string; type: string }
const files = (snapshot: string, dir = ''): IndexFile[] => ok(cli(dataDir, ['snapshot', 'files', snapshot, dir]));

/** Blob file of a path, found through the index the CLI prints and the blob layout. */
function blobLinks(snapshot: string): Map<string, number> {
  const snapDir = path.join(destDir, account.username, snapshot, 'files');
  const out = new Map<string, number>();
  for (const bucket of fs.readdirSync(snapDir)) {
    for (const blob of fs.readdirSync(path.join(snapDir, bucket))) {
      const st = fs.statSync(path.join(snapDir, bucket, blob));
      out.set(`${bucket}/${blob}`, st.nlink);
    }
  }
  return out;
}

test('excludes, .donotbackup folders and donotbackup folders are left out', () => {
  const first = ok(cli(dataDir, ['backup', '--job', 'inc', '--wait'])).snapshots[0];
  const top = files(first).map((e) => e.path);
  assert.ok(top.includes('site'));
  assert.ok(!top.includes('cache'), 'excluded by glob');
  assert.ok(!top.includes('private'), 'holds .donotbackup');
  const site = files(first, 'site').map((e) => e.path);
  assert.ok(!site.includes('site/error.log'), 'excluded by *.log');
  assert.ok(!site.includes('site/donotbackup'), 'named donotbackup');
  assert.equal(site.filter((p) => p.startsWith('site/dir')).length, 10);
  const manifest = ok(cli(dataDir, ['snapshot', 'show', first])).manifest;
  assert.equal(manifest.stats.files, 200);
  assert.equal(manifest.status, 'completed', 'intentional skips do not make a snapshot partial');
});

test('a second incremental run stores only what changed; unchanged files are hard links', () => {
  const [first] = ok(cli(dataDir, ['snapshot', 'list', '--account', account.username])).map((s: any) => s.id);
  const h = account.home;
  fs.writeFileSync(path.join(h, 'site/dir3/file3.txt'), 'changed content');
  fs.chownSync(path.join(h, 'site/dir3/file3.txt'), account.uid, account.gid);
  fs.writeFileSync(path.join(h, 'site/added.txt'), 'new file');
  fs.chownSync(path.join(h, 'site/added.txt'), account.uid, account.gid);
  const r = ok(cli(dataDir, ['backup', '--job', 'inc', '--wait']));
  const second = r.snapshots[0];
  assert.notEqual(second, first);
  assert.equal(r.results[0].storedBytes, 'changed content'.length + 'new file'.length);
  const links = blobLinks(second);
  const shared = [...links.values()].filter((n) => n === 2).length;
  const own = [...links.values()].filter((n) => n === 1).length;
  assert.equal(shared, 199, 'unchanged files share their blob with the first snapshot');
  assert.equal(own, 2, 'the changed and the added file are new blobs');
  const firstLinks = blobLinks(first);
  assert.equal([...firstLinks.values()].filter((n) => n === 1).length, 1, 'only the old version of the changed file is unshared');
});

test('restoring the older snapshot brings back the older content', () => {
  const snaps = ok(cli(dataDir, ['snapshot', 'list', '--account', account.username])).map((s: any) => s.id);
  const oldest = snaps[snaps.length - 1];
  ok(cli(dataDir, ['restore', oldest, '--path', 'site/dir3/file3.txt', '--wait']));
  const content = fs.readFileSync(path.join(account.home, 'site/dir3/file3.txt'));
  assert.equal(content.length, 2003);
  assert.equal(fs.statSync(path.join(account.home, 'site/dir3/file3.txt')).uid, account.uid);
});
