import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { buildTrickyTree } from './support/tricky-tree.js';
import { diffTrees, snapshotTree } from './support/tree.js';
import { LinkFree } from './support/link-free.js';
import { LocalDestination } from '../server/destinations/local.js';
import { backupAccount } from '../server/engine/backup.js';
import { restoreSnapshot } from '../server/engine/restore.js';
import { verifySnapshotData } from '../server/engine/verify.js';
import { sweepUnusedObjects } from '../server/engine/object-sweep.js';
import { ObjectLease } from '../server/engine/object-lease.js';
import { layout } from '../server/engine/snapshot-layout.js';
import type { Account } from '../server/panels/types.js';

/**
 * The object layout at unit level, on a Local destination with its hard-link capability
 * hidden. The proof against a real object store is test/object-incremental.test.ts.
 */
let homeRoot: string;
let acct: TestAccount;
let account: Account;
let destDir: string;
let dest: LinkFree;

const noMysql = async (): Promise<never> => { throw new Error('no databases here'); };

/** Sets every content object's time `seconds` back, as if the runs that wrote them were that long ago. */
function ageObjects(seconds: number): void {
  const dir = path.join(destDir, layout.objectsDir(acct.username));
  const then = new Date(Date.now() - seconds * 1000);
  for (const b of fs.readdirSync(dir)) for (const o of fs.readdirSync(path.join(dir, b))) fs.utimesSync(path.join(dir, b, o), then, then);
}

function objectsOnDisk(): Map<string, number> {
  const dir = path.join(destDir, layout.objectsDir(acct.username));
  const out = new Map<string, number>();
  if (!fs.existsSync(dir)) return out;
  for (const b of fs.readdirSync(dir)) for (const o of fs.readdirSync(path.join(dir, b))) out.set(o, fs.statSync(path.join(dir, b, o)).size);
  return out;
}

const backup = (previousId: string | null) => backupAccount({
  account, destination: dest, structure: 'incremental', items: ['files'], excludes: [], jobName: 'unit', previousId, mysql: noMysql,
});

before(async () => {
  homeRoot = makeHomeRoot();
  acct = createAccount(homeRoot);
  for (const skel of fs.readdirSync(acct.home)) fs.rmSync(path.join(acct.home, skel), { recursive: true });
  buildTrickyTree(acct);
  fs.mkdirSync(path.join(acct.home, 'site'));
  for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(acct.home, `site/f${i}.bin`), crypto.randomBytes(5000 + i));
  // Larger than what is held in memory: goes through a staging name.
  fs.writeFileSync(path.join(acct.home, 'site/large.bin'), crypto.randomBytes(9 << 20));
  execFileSync('chown', ['-R', `${acct.uid}:${acct.gid}`, path.join(acct.home, 'site')]);
  account = { username: acct.username, owner: 'root', home: acct.home, uid: acct.uid, gid: acct.gid, domains: [], databases: [], databaseUsers: [],
    suspended: false, package: null, contactEmail: null };
  destDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-objunit-'));
  fs.chmodSync(destDir, 0o700);
  dest = new LinkFree(new LocalDestination(destDir));
  await dest.open();
});

after(() => {
  removeAccount(acct);
  for (const d of [homeRoot, destDir]) fs.rmSync(d, { recursive: true, force: true });
});

const ids: string[] = [];

test('a destination without hard links gets the object layout: content once per hash, no files/ folder', async () => {
  const m = await backup(null);
  ids.push(m.id);
  assert.equal(m.content, 'objects');
  assert.equal(fs.existsSync(path.join(destDir, acct.username, m.id, 'files')), false);
  assert.equal(fs.existsSync(path.join(destDir, acct.username, m.id, 'staging')), false, 'the staging folder is gone with the rename');
  const objects = objectsOnDisk();
  assert.ok(objects.size >= 50, `objects: ${objects.size}`);
  for (const [name, size] of objects) {
    const file = path.join(destDir, layout.object(acct.username, name));
    assert.equal(crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex'), name, 'each object is named by its content');
    assert.ok(size > 0, 'no object for empty content');
  }
  assert.equal(fs.readdirSync(path.join(destDir, layout.leasesDir(acct.username))).length, 0, 'the lease is released');
});

test('the second run sends only the changed content', async () => {
  fs.writeFileSync(path.join(acct.home, 'site/f7.bin'), 'changed');
  fs.writeFileSync(path.join(acct.home, 'site/new.bin'), crypto.randomBytes(3000));
  // Same content under a new name: found already stored, not sent again.
  fs.copyFileSync(path.join(acct.home, 'site/f8.bin'), path.join(acct.home, 'site/copy-of-f8.bin'));
  execFileSync('chown', ['-R', `${acct.uid}:${acct.gid}`, path.join(acct.home, 'site')]);
  const before = objectsOnDisk();
  const sentBefore = { ...dest.sent };
  const m = await backup(ids[0]!);
  ids.push(m.id);
  const added = [...objectsOnDisk().keys()].filter((k) => !before.has(k));
  assert.equal(added.length, 2, 'two new contents: the changed and the added file');
  assert.equal(m.stats.storedBytes, 'changed'.length + 3000);
  const contentBytes = dest.sent.bytes - sentBefore.bytes;
  // What else was written: the index, the manifest, the lease (small).
  assert.ok(contentBytes < 3007 + 20_000, `sent ${contentBytes} bytes`);
});

test('restore from the object layout is byte-exact, tricky names included', async () => {
  const tree = snapshotTree(acct.home, { skip: (p) => p.startsWith('tidemark-restore-') });
  const out = await restoreSnapshot({ account, destination: dest, snapshotId: ids[1]!, paths: [], files: true, databases: [], intoFolder: true,
    mysql: noMysql, databaseOwnership: noMysql });
  assert.ok(out.folder);
  assert.deepEqual(diffTrees(tree, snapshotTree(path.join(acct.home, out.folder!))), []);
  fs.rmSync(path.join(acct.home, out.folder!), { recursive: true, force: true });
  const v = await verifySnapshotData(dest, acct.username, ids[1]!);
  assert.deepEqual(v.damaged, []);
  assert.ok(v.checked.files > 50);
});

test('deleting the oldest snapshot frees exactly the objects no other snapshot uses', async () => {
  fs.writeFileSync(path.join(acct.home, 'site/f9.bin'), 'third run');
  execFileSync('chown', [`${acct.uid}:${acct.gid}`, path.join(acct.home, 'site/f9.bin')]);
  const third = await backup(ids[1]!);
  ids.push(third.id);
  // What only the first snapshot uses: the old content of f7.bin.
  const before = objectsOnDisk();
  await dest.remove(layout.snapshotDir(acct.username, ids[0]!));
  // A sweep spares objects from the second of its lease on (a backup may be writing them), and
  // these three runs took less than that: the objects are made a minute old, as they would be.
  ageObjects(60);
  const r = await sweepUnusedObjects(dest, acct.username);
  const afterObjects = objectsOnDisk();
  assert.equal(r.deferred, null);
  assert.equal(r.removed, 1, JSON.stringify(r));
  assert.equal(before.size - afterObjects.size, 1);
  const restored = await restoreSnapshot({ account, destination: dest, snapshotId: ids[1]!, paths: ['site'], files: true, databases: [], intoFolder: true,
    mysql: noMysql, databaseOwnership: noMysql });
  assert.equal(fs.readFileSync(path.join(acct.home, restored.folder!, 'site/f7.bin'), 'utf8'), 'changed');
  fs.rmSync(path.join(acct.home, restored.folder!), { recursive: true, force: true });
});

test('a sweep defers while a backup of the account holds a lease, and deletes nothing', async () => {
  const lease = await ObjectLease.take(dest, acct.username, 'backup', 'another-server-run');
  assert.ok(lease);
  await dest.remove(layout.snapshotDir(acct.username, ids[1]!));
  const before = objectsOnDisk();
  await new Promise((r) => setTimeout(r, 1100));
  const r = await sweepUnusedObjects(dest, acct.username);
  assert.match(r.deferred ?? '', /backup of the account is running/);
  assert.deepEqual(objectsOnDisk(), before);
  await lease!.release();
  const again = await sweepUnusedObjects(dest, acct.username);
  assert.equal(again.deferred, null);
  assert.ok(again.removed >= 1, 'freed once the backup is over');
});

test('a backup waits while a sweep holds its lease, then runs', async () => {
  const sweep = await ObjectLease.take(dest, acct.username, 'sweep', 'elsewhere');
  assert.ok(sweep);
  let done = false;
  const run = backup(ids[2]!).then((m) => { done = true; return m; });
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(done, false, 'the backup waits for the sweep');
  await sweep!.release();
  const m = await run;
  assert.equal(m.status, 'completed');
});

test('a snapshot index that cannot be read stops the sweep before anything is deleted', async () => {
  const second = ids[2]!;
  const indexFile = path.join(destDir, layout.snapshotDir(acct.username, second), layout.index);
  const good = fs.readFileSync(indexFile);
  // Some object nobody uses, old enough to go.
  const orphan = crypto.randomBytes(100);
  const hex = crypto.createHash('sha256').update(orphan).digest('hex');
  fs.mkdirSync(path.join(destDir, layout.objectDir(acct.username, hex)), { recursive: true });
  fs.writeFileSync(path.join(destDir, layout.object(acct.username, hex)), orphan);
  fs.utimesSync(path.join(destDir, layout.object(acct.username, hex)), new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));
  fs.writeFileSync(indexFile, good.subarray(0, good.length - 40));
  const before = objectsOnDisk();
  await assert.rejects(sweepUnusedObjects(dest, acct.username), /index|damaged|unexpected end/i);
  assert.deepEqual(objectsOnDisk(), before, 'nothing deleted');
  fs.writeFileSync(indexFile, good);
  const r = await sweepUnusedObjects(dest, acct.username);
  assert.equal(r.removed, 1, 'the orphan goes once every index reads');
  assert.equal(objectsOnDisk().has(hex), false);
});

test('a lease left by a killed run stops counting once it was not renewed for the lease time', async () => {
  const stale = await ObjectLease.take(dest, acct.username, 'backup', 'killed-run');
  assert.ok(stale);
  // Killed: its heartbeat stops; its file stays, last written long ago.
  await (stale as unknown as { timer: NodeJS.Timeout | null }).timer?.close();
  const file = path.join(destDir, layout.leasesDir(acct.username), 'backup-killed-run.json');
  fs.utimesSync(file, new Date(Date.now() - 11 * 60_000), new Date(Date.now() - 11 * 60_000));
  const r = await sweepUnusedObjects(dest, acct.username);
  assert.equal(r.deferred, null, 'a stale lease does not hold sweeps back');
  fs.utimesSync(file, new Date(Date.now() - 30 * 60_000), new Date(Date.now() - 30 * 60_000));
  await sweepUnusedObjects(dest, acct.username);
  assert.equal(fs.existsSync(file), false, 'removed once older than twice the lease time');
});

test('a backup whose lease could not be renewed writes no manifest: nothing listed, the earlier snapshots stand', async () => {
  const failing = new LinkFree(new LocalDestination(destDir));
  const realWrite = failing.writeFile.bind(failing);
  let leaseWrites = 0;
  failing.writeFile = async (rel, data) => {
    // The first write of the lease works (it is taken); renewing it fails (a network cut).
    if (rel.includes('/.leases/') && ++leaseWrites > 1) throw new Error('connection reset');
    return realWrite(rel, data);
  };
  const before = fs.readdirSync(path.join(destDir, acct.username)).filter((n) => /^\d{8}T/.test(n)).sort();
  await assert.rejects(backupAccount({ account, destination: failing, structure: 'incremental', items: ['files'], excludes: [], jobName: 'unit',
    previousId: null, mysql: noMysql }), /lease on the destination could not be renewed: connection reset/);
  assert.deepEqual(fs.readdirSync(path.join(destDir, acct.username)).filter((n) => /^\d{8}T/.test(n)).sort(), before, 'no new snapshot');
  assert.deepEqual(fs.readdirSync(path.join(destDir, acct.username)).filter((n) => n.startsWith('.partial-')), [], 'its partial folder is removed');
});
