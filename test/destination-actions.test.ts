import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';

let homeRoot: string;
let account: TestAccount;
let dataDir: string;
let destDir: string;
let snapshot: string;

before(() => {
  homeRoot = makeHomeRoot();
  account = createAccount(homeRoot);
  fs.writeFileSync(path.join(account.home, 'page.html'), 'v1');
  fs.chownSync(path.join(account.home, 'page.html'), account.uid, account.gid);
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  destDir = makeDestinationDir();
  ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
  ok(cli(dataDir, ['job', 'add', '--name', 'j', '--destination', 'disk', '--structure', 'archive', '--accounts', account.username, '--items', 'files']));
  snapshot = ok(cli(dataDir, ['backup', '--job', 'j', '--wait'])).snapshots[0];
});

after(() => {
  removeAccount(account);
  for (const d of [homeRoot, dataDir, destDir]) fs.rmSync(d, { recursive: true, force: true });
});

test('a disabled destination takes no new backups, and its snapshots stay restorable', () => {
  assert.equal(ok(cli(dataDir, ['destination', 'disable', 'disk'])).enabled, false);
  const r = cli(dataDir, ['backup', '--job', 'j', '--wait']);
  assert.equal(r.code, 1);
  assert.match(r.json.error, /destination "disk" is disabled/);
  fs.writeFileSync(path.join(account.home, 'page.html'), 'broken');
  ok(cli(dataDir, ['restore', snapshot, '--path', 'page.html', '--wait']));
  assert.equal(fs.readFileSync(path.join(account.home, 'page.html'), 'utf8'), 'v1');
  assert.equal(ok(cli(dataDir, ['destination', 'enable', 'disk'])).enabled, true);
  assert.equal(ok(cli(dataDir, ['backup', '--job', 'j', '--wait'])).results[0].status, 'completed');
});

test('snapshot visibility can be hidden and shown again', () => {
  assert.equal(ok(cli(dataDir, ['destination', 'visibility', 'disk', '--hidden'])).snapshotsVisible, false);
  assert.equal(ok(cli(dataDir, ['destination', 'show', 'disk'])).snapshotsVisible, false);
  assert.equal(ok(cli(dataDir, ['destination', 'visibility', 'disk', '--visible'])).snapshotsVisible, true);
  assert.equal(cli(dataDir, ['destination', 'visibility', 'disk']).code, 2);
});

test('validate writes, reads back and deletes a probe; a vanished destination fails clearly', () => {
  const r = ok(cli(dataDir, ['destination', 'validate', 'disk']));
  assert.equal(r.ok, true);
  assert.ok(r.space.freeBytes > 0);
  assert.equal(typeof r.latencyMs, 'number');
  assert.deepEqual(fs.readdirSync(destDir).filter((n) => n.startsWith('.tidemark-probe')), [], 'the probe is gone');
  const gone = makeDestinationDir();
  ok(cli(dataDir, ['destination', 'add', '--name', 'gone', '--type', 'local', '--path', gone]));
  fs.rmSync(gone, { recursive: true });
  const bad = cli(dataDir, ['destination', 'validate', 'gone']);
  assert.equal(bad.code, 1);
  assert.equal(bad.json.ok, false);
  assert.match(bad.json.error, /does not exist/);
  ok(cli(dataDir, ['destination', 'remove', 'gone']));
});

test('regression: a verify that could not read the destination (a path no longer secure) marked the snapshot damaged', () => {
  const status = (): string => ok(cli(dataDir, ['snapshot', 'list', '--account', account.username])).find((s: any) => s.id === snapshot).status;
  assert.equal(status(), 'completed');
  fs.chmodSync(destDir, 0o777);
  try {
    const r = cli(dataDir, ['snapshot', 'verify', snapshot]);
    assert.equal(r.code, 1);
    assert.match(r.json.error, /is not secure/);
    assert.equal(status(), 'completed', 'nothing stored was found damaged');
    assert.equal(cli(dataDir, ['destination', 'verify', 'disk']).code, 1);
    assert.equal(status(), 'completed');
  } finally {
    fs.chmodSync(destDir, 0o755);
  }
  assert.equal(ok(cli(dataDir, ['snapshot', 'verify', snapshot])).result, 'ok');
});

test('browse lists a folder of the destination and refuses ".."', () => {
  const top = ok(cli(dataDir, ['destination', 'browse', 'disk'])).map((e: any) => e.name);
  assert.ok(top.includes('tidemark.json'));
  assert.ok(top.includes(account.username));
  const snaps = ok(cli(dataDir, ['destination', 'browse', 'disk', account.username])).map((e: any) => e.name);
  assert.ok(snaps.includes(snapshot));
  const up = cli(dataDir, ['destination', 'browse', 'disk', '../..']);
  assert.equal(up.code, 2, 'a path with ".." is a malformed command line');
  const missing = cli(dataDir, ['destination', 'browse', 'disk', 'nosuch']);
  assert.equal(missing.code, 1);
  assert.equal(missing.json.error, 'not found on the destination: nosuch');
});

test('removing a destination keeps its data unless --delete-data is given', () => {
  ok(cli(dataDir, ['job', 'remove', 'j']));
  const other = makeDestinationDir();
  ok(cli(dataDir, ['destination', 'add', '--name', 'second', '--type', 'local', '--path', other]));
  ok(cli(dataDir, ['job', 'add', '--name', 'j2', '--destination', 'second', '--structure', 'incremental', '--accounts', account.username, '--items', 'files']));
  const s2 = ok(cli(dataDir, ['backup', '--job', 'j2', '--wait'])).snapshots[0];
  ok(cli(dataDir, ['job', 'remove', 'j2']));
  const kept = ok(cli(dataDir, ['destination', 'remove', 'disk']));
  assert.equal(kept.deletedSnapshots, 0);
  assert.ok(fs.existsSync(path.join(destDir, account.username, snapshot, 'manifest.json')), 'data stays');
  const deleted = ok(cli(dataDir, ['destination', 'remove', 'second', '--delete-data']));
  assert.equal(deleted.deletedSnapshots, 1);
  assert.ok(!fs.existsSync(path.join(other, account.username, s2)));
  assert.ok(fs.existsSync(path.join(other, 'tidemark.json')), 'only snapshot folders are deleted');
  fs.rmSync(other, { recursive: true, force: true });
});

test('a backup does not start when free space is below the destination limit', () => {
  const dir = makeDestinationDir();
  ok(cli(dataDir, ['destination', 'add', '--name', 'limited', '--type', 'local', '--path', dir, '--free-space-limit', String(1_000_000_000)]));
  ok(cli(dataDir, ['job', 'add', '--name', 'jl', '--destination', 'limited', '--structure', 'archive', '--accounts', account.username, '--items', 'files']));
  const r = cli(dataDir, ['backup', '--job', 'jl', '--wait']);
  assert.equal(r.code, 1);
  assert.match(r.json.error, /MB free, below its limit of 1000000000 MB/);
  assert.deepEqual(fs.readdirSync(dir), ['tidemark.json'], 'nothing was written');
  ok(cli(dataDir, ['job', 'remove', 'jl']));
  ok(cli(dataDir, ['destination', 'remove', 'limited']));
  fs.rmSync(dir, { recursive: true, force: true });
});
