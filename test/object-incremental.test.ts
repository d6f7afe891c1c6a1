import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import os from 'node:os';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDataDir, ok } from './support/cli.js';
import { buildTrickyTree } from './support/tricky-tree.js';
import { diffTrees, snapshotTree } from './support/tree.js';
import { sharedCeph, type CephCluster } from './support/ceph.js';
import { S3Destination } from '../server/destinations/s3.js';
import { S3_DEFAULTS, type S3Settings } from '../server/destinations/s3-settings.js';
import { backupAccount } from '../server/engine/backup.js';
import { restoreSnapshot } from '../server/engine/restore.js';
import { verifySnapshotData } from '../server/engine/verify.js';
import { sweepUnusedObjects } from '../server/engine/object-sweep.js';
import { layout } from '../server/engine/snapshot-layout.js';
import { encodeEntry, makeEntry, type Entry } from '../server/engine/format/entry.js';
import type { Account } from '../server/panels/types.js';

/**
 * The incremental structure on an object store (no hard links), against a real Ceph Object
 * Gateway: what the second run sends, byte-exact round trips, what deleting a snapshot frees,
 * and hostile indexes.
 */
let ceph: CephCluster;
let homeRoot: string;
let acct: TestAccount;
let account: Account;
let settings: S3Settings;
let dest: S3Destination;
let raw: S3Client;

const noMysql = async (): Promise<never> => { throw new Error('no databases here'); };
const chown = (p: string): void => { execFileSync('chown', ['-R', `${acct.uid}:${acct.gid}`, p]); };

/** Every key in the bucket under this server's folder, with its size (listed without the driver). */
async function bucketKeys(under = ''): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let token: string | undefined;
  const prefix = `${settings.serverFolder}/${under}`;
  do {
    const r = await raw.send(new ListObjectsV2Command({ Bucket: settings.bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of r.Contents ?? []) out.set(o.Key!.slice(settings.serverFolder.length + 1), o.Size ?? 0);
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  return out;
}

const contentObjects = async (): Promise<Set<string>> =>
  new Set([...(await bucketKeys(`${acct.username}/objects/`)).keys()].filter((k) => /\/[0-9a-f]{64}$/.test(k)));

const backup = (previousId: string | null) => backupAccount({
  account, destination: dest, structure: 'incremental', items: ['files'], excludes: [], jobName: 's3', previousId, mysql: noMysql,
});

const restoreInto = async (id: string, paths: string[] = []): Promise<string> => {
  const out = await restoreSnapshot({ account, destination: dest, snapshotId: id, paths, files: true, databases: [], intoFolder: true,
    mysql: noMysql, databaseOwnership: noMysql });
  return path.join(acct.home, out.folder!);
};

before(async () => {
  ceph = await sharedCeph();
  homeRoot = makeHomeRoot();
  acct = createAccount(homeRoot);
  for (const skel of fs.readdirSync(acct.home)) fs.rmSync(path.join(acct.home, skel), { recursive: true });
  buildTrickyTree(acct);
  fs.mkdirSync(path.join(acct.home, 'site'));
  for (let i = 0; i < 100; i++) fs.writeFileSync(path.join(acct.home, `site/page${i}.html`), crypto.randomBytes(4000 + i));
  // Over the in-memory limit: stored through a staging name and a server-side copy.
  fs.writeFileSync(path.join(acct.home, 'site/video.bin'), crypto.randomBytes(10 << 20));
  chown(path.join(acct.home, 'site'));
  account = { username: acct.username, owner: 'root', home: acct.home, uid: acct.uid, gid: acct.gid, domains: [], databases: [], databaseUsers: [],
    suspended: false, package: null, contactEmail: null };
  settings = { ...S3_DEFAULTS, endpoint: ceph.endpoint, region: ceph.region, bucket: await ceph.newBucket('objinc'), serverFolder: 'server-a',
    accessKeyId: ceph.accessKey, secretAccessKey: ceph.secretKey };
  dest = new S3Destination(settings);
  await dest.open();
  raw = new S3Client({ endpoint: ceph.endpoint, region: ceph.region, forcePathStyle: true,
    credentials: { accessKeyId: ceph.accessKey, secretAccessKey: ceph.secretKey } });
});

const cleanups: string[] = [];
after(async () => {
  await dest?.close();
  raw?.destroy();
  if (acct) removeAccount(acct);
  for (const d of [homeRoot, ...cleanups]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

const ids: string[] = [];
const sizeOfHome = (): number => {
  let n = 0;
  for (const e of snapshotTree(acct.home).values()) if (e.type === 'file') n += e.size;
  return n;
};

test('first run on radosgw: every content once as an object, a byte-exact restore with tricky names', async () => {
  const before = dest.bytesSent();
  const requests0 = dest.requestsSent();
  const m = await backup(null);
  ids.push(m.id);
  assert.equal(m.content, 'objects');
  const sent = dest.bytesSent() - before;
  process.stdout.write(`# first incremental run on radosgw: ${dest.requestsSent() - requests0} requests, ${sent} bytes sent (${m.stats.files} files, content ${m.stats.storedBytes} bytes)\n`);
  assert.ok(sent >= m.stats.storedBytes, `sent ${sent}, stored ${m.stats.storedBytes}`);
  const keys = await bucketKeys(`${acct.username}/${m.id}/`);
  // (The driver's folder markers, keys ending in '/', hold nothing.)
  assert.deepEqual([...keys.keys()].filter((k) => !k.endsWith('/')).sort(), [`${acct.username}/${m.id}/${layout.index}`, `${acct.username}/${m.id}/${layout.manifest}`],
    'the snapshot folder holds only its index and manifest (no files/, no staging left)');
  const objects = await contentObjects();
  assert.ok(objects.size > 100, `objects: ${objects.size}`);
  const objectBytes = [...(await bucketKeys(`${acct.username}/objects/`)).entries()].filter(([k]) => objects.has(k)).reduce((n, [, size]) => n + size, 0);
  assert.equal(m.stats.storedBytes, objectBytes, 'what the manifest says was stored is what the objects hold');
  assert.deepEqual([...(await bucketKeys(`${acct.username}/.partial-`)).keys()], [], 'nothing partial left');

  const tree = snapshotTree(acct.home, { skip: (p) => p.startsWith('tidemark-restore-') });
  const folder = await restoreInto(m.id);
  assert.deepEqual(diffTrees(tree, snapshotTree(folder)), []);
  fs.rmSync(folder, { recursive: true, force: true });
  assert.ok(sizeOfHome() > 10 << 20);
});

test('the second run sends only changed content: requests and bytes counted by the driver', async () => {
  fs.writeFileSync(path.join(acct.home, 'site/page5.html'), 'changed page');
  fs.writeFileSync(path.join(acct.home, 'site/added.html'), crypto.randomBytes(6000));
  chown(path.join(acct.home, 'site'));
  const objectsBefore = await contentObjects();
  const bytes0 = dest.bytesSent();
  const requests0 = dest.requestsSent();
  const m = await backup(ids[0]!);
  ids.push(m.id);
  const bytes = dest.bytesSent() - bytes0;
  const requests = dest.requestsSent() - requests0;
  const added = [...(await contentObjects())].filter((k) => !objectsBefore.has(k));
  assert.equal(added.length, 2, 'two new objects: the changed and the added file');
  assert.equal(m.stats.storedBytes, 'changed page'.length + 6000, 'content sent: only what changed');
  // Besides the two contents: the index (a few KB gzipped), the manifest, the lease.
  assert.ok(bytes < 6012 + 64 * 1024, `bytes sent by the second run: ${bytes}`);
  assert.ok(requests < 60, `requests of the second run: ${requests} (the first run's file count is over 100)`);
  process.stdout.write(`# second incremental run on radosgw: ${requests} requests, ${bytes} bytes sent (content ${m.stats.storedBytes} bytes)\n`);

  const tree = snapshotTree(acct.home, { skip: (p) => p.startsWith('tidemark-restore-') });
  const folder = await restoreInto(m.id);
  assert.deepEqual(diffTrees(tree, snapshotTree(folder)), [], 'the second snapshot restores whole from shared objects');
  fs.rmSync(folder, { recursive: true, force: true });
  const v = await verifySnapshotData(dest, acct.username, m.id);
  assert.deepEqual(v.damaged, []);
});

test('deleting the oldest of three snapshots frees exactly the objects no other snapshot uses', async () => {
  fs.writeFileSync(path.join(acct.home, 'site/page6.html'), 'third run');
  chown(path.join(acct.home, 'site'));
  const m = await backup(ids[1]!);
  ids.push(m.id);
  const before = await contentObjects();
  const inFirst = await hashesOf(ids[0]!);
  const inOthers = new Set([...(await hashesOf(ids[1]!)), ...(await hashesOf(ids[2]!))]);
  const expectedGone = [...inFirst].filter((h) => !inOthers.has(h)).map((h) => layout.object(acct.username, h)).sort();
  assert.equal(expectedGone.length, 1, 'only the old content of page5.html is the first snapshot\'s alone');

  // As retention does it: the folder hidden, then deleted, then the sweep.
  await dest.rename(layout.snapshotDir(acct.username, ids[0]!), layout.partialDir(acct.username, ids[0]!));
  await dest.remove(layout.partialDir(acct.username, ids[0]!));
  // A sweep spares objects from the second of its lease on (the gateway's times are whole
  // seconds): the object to free must be older than that, whatever the speed of the runs.
  await new Promise((r) => setTimeout(r, 2100));
  const r = await sweepUnusedObjects(dest, acct.username);
  const afterObjects = await contentObjects();
  assert.equal(r.deferred, null);
  assert.deepEqual([...before].filter((k) => !afterObjects.has(k)).sort(), expectedGone, 'exactly those objects are gone');
  assert.equal(r.removed, 1);
  for (const id of ids.slice(1)) assert.deepEqual((await verifySnapshotData(dest, acct.username, id)).damaged, [], `snapshot ${id} is whole`);
});

/** The content hashes a snapshot's index names. */
async function hashesOf(id: string): Promise<Set<string>> {
  const { readIndex } = await import('../server/engine/snapshot-index.js');
  const out = new Set<string>();
  for (const e of await readIndex(dest, layout.snapshotDir(acct.username, id))) if (e.kind === 'f' && e.size > 0 && e.hash) out.add(e.hash.toString('hex'));
  return out;
}

/** A snapshot written as a hostile controller of the bucket would. */
async function plant(entries: Entry[]): Promise<string> {
  const id = `20250101T000000Z-${crypto.randomBytes(2).toString('hex')}`;
  const dir = layout.snapshotDir(acct.username, id);
  await dest.writeFile(`${dir}/${layout.index}`, zlib.gzipSync(Buffer.concat(entries.map((e) => encodeEntry(e)))));
  const now = new Date().toISOString();
  await dest.writeFile(`${dir}/${layout.manifest}`, JSON.stringify({
    format: 'tidemark-snapshot', version: 1, id, account: acct.username, structure: 'incremental', status: 'completed', content: 'objects',
    startedAt: now, finishedAt: now, items: ['files'], previous: null,
    stats: { files: 1, directories: 1, links: 0, bytes: 1, storedBytes: 1, skipped: 0, excluded: 0 }, skipped: [],
    databases: [], grants: null, accountInfo: { uid: acct.uid, gid: acct.gid, home: acct.home, owner: 'root', domains: [] }, job: null,
  }));
  return id;
}

const rootEntry = (): Entry => makeEntry({ kind: 'd', path: '', mode: 0o711, uid: acct.uid, gid: acct.gid });

test('a hostile index cannot reach outside the account\'s objects/: no hash, another account\'s object, a folder as object', async () => {
  // No hash: the entry names no object.
  const noHash = await plant([rootEntry(), makeEntry({ kind: 'f', path: 'stolen', size: 10, dataRef: 0, mode: 0o644, uid: acct.uid, gid: acct.gid })]);
  await assert.rejects(restoreInto(noHash), /names no content object.*refused/);

  // Another account's object, its hash known: the name is made under this account's objects/ only.
  const secret = Buffer.from('bob\'s private data');
  const hash = crypto.createHash('sha256').update(secret).digest();
  await dest.writeFile(layout.object('bob', hash.toString('hex')), secret);
  const other = await plant([rootEntry(), makeEntry({ kind: 'f', path: 'bobs', size: secret.length, dataRef: 0, mode: 0o644, uid: acct.uid, gid: acct.gid, hash })]);
  await assert.rejects(restoreInto(other), /not found on the destination/);
  assert.equal(fs.readdirSync(acct.home).some((n) => n.startsWith('tidemark-restore-') && fs.existsSync(path.join(acct.home, n, 'bobs'))
    && fs.readFileSync(path.join(acct.home, n, 'bobs')).equals(secret)), false, 'bob\'s content never reached the account');

  // A key that lists as a folder where the object should be.
  const h2 = crypto.createHash('sha256').update('folder').digest();
  await dest.writeFile(`${layout.object(acct.username, h2.toString('hex'))}/inner`, 'x');
  const asDir = await plant([rootEntry(), makeEntry({ kind: 'f', path: 'f', size: 1, dataRef: 0, mode: 0o644, uid: acct.uid, gid: acct.gid, hash: h2 })]);
  await assert.rejects(restoreInto(asDir), /not a regular file.*refused/);

  // The same checks hold for the next backup's base: a hostile base is not used.
  for (const n of fs.readdirSync(acct.home)) if (n.startsWith('tidemark-restore-')) fs.rmSync(path.join(acct.home, n), { recursive: true, force: true });
  const warnings: string[] = [];
  const m = await backupAccount({ account, destination: dest, structure: 'incremental', items: ['files'], excludes: [], jobName: 's3', previousId: noHash,
    mysql: noMysql, onWarning: (w) => warnings.push(w) });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /not used as a base/);
  for (const id of [noHash, other, asDir]) await dest.remove(layout.snapshotDir(acct.username, id));
  await dest.remove(layout.snapshotDir(acct.username, m.id));
  await dest.remove(`bob`);
  await dest.remove(`${layout.objectDir(acct.username, h2.toString('hex'))}/${h2.toString('hex')}`);
});

// ---------------------------------------------------------------------------------------------
// Through the CLI, as a provider uses it: retention by hand, and the disaster-recovery path.

/** The gateway's access-log lines (requests it answered) from line `from` on. */
function gatewayLog(from: number): { method: string; bytes: number }[] {
  const lines = fs.readFileSync(path.join(ceph.dir, 'log', 'ceph-client.rgw.a.log'), 'utf8').split('\n').slice(from);
  const out: { method: string; bytes: number }[] = [];
  for (const l of lines) {
    const m = /"(GET|PUT|HEAD|POST|DELETE) (\S+) HTTP\/[\d.]+" (\d+) (\d+)/.exec(l);
    if (m) out.push({ method: m[1]!, bytes: Number(m[4]) });
  }
  return out;
}
const gatewayLines = (): number => fs.readFileSync(path.join(ceph.dir, 'log', 'ceph-client.rgw.a.log'), 'utf8').split('\n').length - 1;

let cliBucket: string;
let secretFile: string;
const cliIds: string[] = [];
let thirdTree: ReturnType<typeof snapshotTree>;

const addDestination = (dataDir: string): void => {
  ok(cli(dataDir, ['destination', 'add', '--name', 'offsite', '--type', 's3', '--endpoint', ceph.endpoint, '--bucket', cliBucket,
    '--access-key', ceph.accessKey, '--secret-file', secretFile, '--server-folder', 'server-a']));
};

test('CLI: three incremental runs on s3, the oldest deleted by hand: exactly the objects no other snapshot uses are freed', async () => {
  for (const n of fs.readdirSync(acct.home)) if (n.startsWith('tidemark-restore-')) fs.rmSync(path.join(acct.home, n), { recursive: true, force: true });
  cliBucket = await ceph.newBucket('objcli');
  const secrets = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-objsecret-'));
  cleanups.push(secrets);
  secretFile = path.join(secrets, 'secret');
  fs.writeFileSync(secretFile, `${ceph.secretKey}\n`, { mode: 0o600 });
  const dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  cleanups.push(dataDir);
  addDestination(dataDir);
  ok(cli(dataDir, ['job', 'add', '--name', 'inc', '--destination', 'offsite', '--structure', 'incremental', '--accounts', acct.username, '--items', 'files']));
  cliIds.push(ok(cli(dataDir, ['backup', '--job', 'inc', '--wait'])).snapshots[0]);

  fs.writeFileSync(path.join(acct.home, 'site/page10.html'), 'second CLI run');
  chown(path.join(acct.home, 'site'));
  const from = gatewayLines();
  cliIds.push(ok(cli(dataDir, ['backup', '--job', 'inc', '--wait'])).snapshots[0]);
  const second = gatewayLog(from);
  const puts = second.filter((q) => q.method === 'PUT' || q.method === 'POST');
  process.stdout.write(`# second incremental run through the CLI, as the gateway logged it: ${second.length} requests, ${puts.length} PUT/POST\n`);
  const bigFiles = [...snapshotTree(acct.home).values()].filter((e) => e.type === 'file').length;
  assert.ok(second.length < 80, `the second run made ${second.length} requests for a home of ${bigFiles} files`);

  fs.writeFileSync(path.join(acct.home, 'site/page11.html'), 'third CLI run');
  chown(path.join(acct.home, 'site'));
  cliIds.push(ok(cli(dataDir, ['backup', '--job', 'inc', '--wait'])).snapshots[0]);
  thirdTree = snapshotTree(acct.home, { skip: (p) => p.startsWith('tidemark-restore-') });

  const viewer = new S3Destination({ ...settings, bucket: cliBucket });
  const { readIndex } = await import('../server/engine/snapshot-index.js');
  const hashes = async (id: string): Promise<Set<string>> => new Set((await readIndex(viewer, layout.snapshotDir(acct.username, id)))
    .filter((e) => e.kind === 'f' && e.size > 0 && e.hash).map((e) => e.hash!.toString('hex')));
  const others = new Set([...(await hashes(cliIds[1]!)), ...(await hashes(cliIds[2]!))]);
  const expectedGone = [...(await hashes(cliIds[0]!))].filter((h) => !others.has(h)).map((h) => layout.object(acct.username, h)).sort();
  await viewer.close();
  assert.equal(expectedGone.length, 1, 'the old page10.html is the first snapshot\'s alone');

  const listObjects = async (): Promise<Set<string>> => {
    const out = new Set<string>();
    let token: string | undefined;
    do {
      const r = await raw.send(new ListObjectsV2Command({ Bucket: cliBucket, Prefix: `server-a/${acct.username}/objects/`, ContinuationToken: token }));
      for (const o of r.Contents ?? []) if (/\/[0-9a-f]{64}$/.test(o.Key!)) out.add(o.Key!.slice('server-a/'.length));
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out;
  };
  const before = await listObjects();
  const deleted = ok(cli(dataDir, ['snapshot', 'delete', cliIds[0]!, '--yes']));
  assert.deepEqual(deleted.objects, { removed: 1, removedBytes: deleted.objects.removedBytes, deferred: null });
  const afterList = await listObjects();
  assert.deepEqual([...before].filter((k) => !afterList.has(k)).sort(), expectedGone, 'exactly the first snapshot\'s own objects are gone');
  assert.equal(afterList.size, before.size - 1);
  const listed = ok(cli(dataDir, ['snapshot', 'list', '--account', acct.username])).map((x: { id: string }) => x.id).sort();
  assert.deepEqual(listed, cliIds.slice(1).sort());
});

test('CLI: disaster recovery: a fresh server with an empty state store reindexes the bucket and restores byte-exactly', () => {
  const fresh = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  cleanups.push(fresh);
  addDestination(fresh);
  const r = ok(cli(fresh, ['destination', 'reindex', 'offsite']));
  assert.equal(r.found, 2, JSON.stringify(r));
  assert.deepEqual(r.problems, []);
  const restored = ok(cli(fresh, ['restore', cliIds[2]!, '--into-folder', '--wait']));
  const folder = path.join(acct.home, restored.folder);
  assert.deepEqual(diffTrees(thirdTree, snapshotTree(folder)), []);
  fs.rmSync(folder, { recursive: true, force: true });

  // Browse and download read the same objects.
  const site = ok(cli(fresh, ['snapshot', 'files', cliIds[2]!, 'site'])).map((e: { path: string }) => e.path);
  assert.ok(site.includes('site/page11.html') && site.includes('site/video.bin'));
  const out = path.join(fresh, 'site.tar.gz');
  ok(cli(fresh, ['download', cliIds[2]!, '--path', 'site', '--out', out]));
  const unpacked = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-objdl-'));
  cleanups.push(unpacked);
  execFileSync('tar', ['-xzf', out, '-C', unpacked]);
  assert.equal(fs.readFileSync(path.join(unpacked, 'files/site/page11.html'), 'utf8'), 'third CLI run');
  assert.ok(fs.readFileSync(path.join(unpacked, 'files/site/video.bin')).equals(fs.readFileSync(path.join(acct.home, 'site/video.bin'))));
});
