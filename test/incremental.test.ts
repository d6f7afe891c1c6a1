import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';
import { execFileSync } from 'node:child_process';
import zlib from 'node:zlib';
import { encodeEntry, makeEntry } from '../server/engine/format/entry.js';

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

test('a previous index refused after the account worker had read part of it: the worker is replaced and everything is stored again', () => {
  const [newest] = ok(cli(dataDir, ['snapshot', 'list', '--account', account.username])).map((s: any) => s.id);
  // The worker now reads the previous index while root checks it: spoil only its last record,
  // so that the worker has read all the rest before root refuses it.
  const indexFile = path.join(destDir, account.username, newest, 'index.bin.gz');
  const hostile = encodeEntry(makeEntry({ kind: 'f', path: '../outside', size: 1, dataRef: 0, mode: 0o644 }));
  fs.writeFileSync(indexFile, zlib.gzipSync(Buffer.concat([zlib.gunzipSync(fs.readFileSync(indexFile)), hostile])));
  const r = ok(cli(dataDir, ['backup', '--job', 'inc', '--wait']));
  assert.equal(r.results[0].status, 'completed');
  const third = r.snapshots[0];
  const manifest = ok(cli(dataDir, ['snapshot', 'show', third])).manifest;
  assert.equal(manifest.previous, null, 'no base');
  assert.equal(r.results[0].storedBytes, manifest.stats.bytes, 'every file stored anew');
  assert.deepEqual([...new Set(blobLinks(third).values())], [1], 'no blob shared with the refused snapshot');
  const log = ok(cli(dataDir, ['task', 'show', String(r.results[0].task)])).log.map((l: any) => l.message).join('\n');
  assert.match(log, new RegExp(`previous snapshot ${newest} not used as a base .*refused as damaged or hostile`));
  const running = fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).filter((n) => {
    try { return fs.statSync(`/proc/${n}`).uid === account.uid; } catch { return false; }
  });
  assert.deepEqual(running, [], 'no account worker is left running');
  // The content is the account's, byte for byte.
  const restored = path.join(account.home, 'site/dir5/file5.txt');
  const before = fs.readFileSync(restored);
  fs.rmSync(restored);
  ok(cli(dataDir, ['restore', third, '--path', 'site/dir5/file5.txt', '--wait']));
  assert.ok(fs.readFileSync(restored).equals(before));
});
