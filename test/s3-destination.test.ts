import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { buildTrickyTree } from './support/tricky-tree.js';
import { diffTrees, snapshotTree } from './support/tree.js';
import { cli, makeDataDir, ok } from './support/cli.js';
import { S3Client, PutObjectCommand, CreateMultipartUploadCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListPartsCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { S3Destination } from '../server/destinations/s3.js';
import { StreamWriter } from '../server/util/stream-writer.js';
import { S3_DEFAULTS, type S3Settings } from '../server/destinations/s3-settings.js';
import { sharedCeph, type CephCluster } from './support/ceph.js';
import { destinationConformance } from './support/destination-conformance.js';

let ceph: CephCluster;
const made: S3Destination[] = [];

let homeRoot: string;
let account: TestAccount;
let dataDir: string;
let secretsDir: string;
let bucket: string;
/** The home as each snapshot saw it. */
const treeAtBackup = new Map<string, ReturnType<typeof snapshotTree>>();

before(async () => {
  ceph = await sharedCeph();
  homeRoot = makeHomeRoot();
  account = createAccount(homeRoot);
  buildTrickyTree(account);
  // Big enough for a multipart archive (parts of 5 MiB), small enough for a RAM-backed OSD.
  fs.writeFileSync(path.join(account.home, 'public_html/big.bin'), crypto.randomBytes(11 << 20));
  fs.chownSync(path.join(account.home, 'public_html/big.bin'), account.uid, account.gid);
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  secretsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-secrets-'));
  fs.writeFileSync(path.join(secretsDir, 'secret'), `${ceph.secretKey}\n`, { mode: 0o600 });
  bucket = await ceph.newBucket('cli');
});

after(async () => {
  for (const d of made) await d.close();
  if (account) removeAccount(account);
  for (const d of [homeRoot, dataDir, secretsDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

/** The CLI arguments that add an s3 destination on the test gateway. */
const s3Args = (name: string, more: string[] = []): string[] => ['destination', 'add', '--name', name, '--type', 's3', '--endpoint', ceph.endpoint,
  '--bucket', bucket, '--access-key', ceph.accessKey, '--secret-file', path.join(secretsDir, 'secret'), '--part-size', '5', ...more];

/** The gateway's access-log lines (beast) of requests for keys ending in `suffix`, after line `from`. */
function gatewayRequests(suffix: string, from: number): { method: string; status: number; bytes: number }[] {
  const lines = fs.readFileSync(path.join(ceph.dir, 'log', 'ceph-client.rgw.a.log'), 'utf8').split('\n').slice(from);
  const out: { method: string; status: number; bytes: number }[] = [];
  for (const l of lines) {
    const m = /"(GET|PUT|HEAD|POST|DELETE) (\S+) HTTP\/[\d.]+" (\d+) (\d+)/.exec(l);
    if (m && m[2]!.split('?')[0]!.endsWith(suffix)) out.push({ method: m[1]!, status: Number(m[3]), bytes: Number(m[4]) });
  }
  return out;
}
const gatewayLogLines = (): number => fs.readFileSync(path.join(ceph.dir, 'log', 'ceph-client.rgw.a.log'), 'utf8').split('\n').length - 1;

async function settings(over: Partial<S3Settings> = {}): Promise<S3Settings> {
  return {
    ...S3_DEFAULTS, endpoint: ceph.endpoint, region: ceph.region, bucket: await ceph.newBucket('conf'), serverFolder: 'server-a',
    accessKeyId: ceph.accessKey, secretAccessKey: ceph.secretKey, ...over,
  };
}

async function fresh(over: Partial<S3Settings> = {}): Promise<S3Destination> {
  const d = new S3Destination(await settings(over));
  made.push(d);
  return d;
}

destinationConformance('s3 (Ceph radosgw)', () => fresh(), { serverSideClone: false, hardLinks: false });

/** Names a path may hold on the destination: account names with dots and dashes, encodeURIComponent'd database names, and worse. */
const TRICKY = ['acct.name-x_y', 'my%20db%2Bx.sql.gz', 'a b', 'ü ñ 漢字', 'q?x#y&z=+;', "it's (1) [2] {3} $HOME *", 'percent%2F%2e%2e', '~tilde', 'x'.repeat(200)];

test('s3: tricky names survive write, list, ranged read, rename and remove', async () => {
  const d = await fresh();
  await d.open();
  const dir = `${TRICKY[0]}/${TRICKY[2]}`;
  for (const [i, name] of TRICKY.entries()) await d.writeFile(`${dir}/${name}`, `content ${i}`);
  const listed = (await d.list(dir)).map((e) => e.name);
  assert.deepEqual(listed, [...TRICKY].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
  for (const [i, name] of TRICKY.entries()) {
    assert.equal((await d.readFile(`${dir}/${name}`)).toString(), `content ${i}`);
    const chunks: Buffer[] = [];
    for await (const c of d.createReadStream(`${dir}/${name}`, { start: 8 })) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), String(i));
  }
  await d.rename(`${TRICKY[0]}`, `${TRICKY[3]}/${TRICKY[4]}`);
  assert.equal(await d.exists(TRICKY[0]!), false);
  assert.equal((await d.readFile(`${TRICKY[3]}/${TRICKY[4]}/${TRICKY[2]}/${TRICKY[5]}`)).toString(), 'content 5');
  await d.remove(TRICKY[3]!);
  assert.deepEqual((await d.list('')).map((e) => e.name), ['tidemark.json']);
});

test('regression: keys planted in the bucket with empty, "." or ".." parts are never listed as names (a hostile bucket cannot lead a walk out of a folder)', async () => {
  const d = await fresh();
  await d.open();
  const st = (d as unknown as { settings: S3Settings }).settings;
  const s3 = new S3Client({ endpoint: ceph.endpoint, region: ceph.region, forcePathStyle: true, credentials: { accessKeyId: ceph.accessKey, secretAccessKey: ceph.secretKey } });
  for (const key of ['server-a/acct/../evil', 'server-a/acct//x', 'server-a/acct/./y', 'server-a/acct/ok']) {
    await s3.send(new PutObjectCommand({ Bucket: st.bucket, Key: key, Body: 'planted' }));
  }
  s3.destroy();
  assert.deepEqual((await d.list('acct')).map((e) => e.name), ['ok']);
  for (const rel of ['acct/../evil', 'acct//x', 'acct/./y', '/acct/ok', 'acct/ok/']) {
    await assert.rejects(d.readFile(rel), /invalid path/, rel);
  }
});

test('s3: a stream is uploaded in parts while it is written (no local copy), and the object appears only when it ends', async () => {
  const d = await fresh({ partSizeMb: 5, parallelTransfers: 1 });
  await d.open();
  const s3 = new S3Client({ endpoint: ceph.endpoint, region: ceph.region, forcePathStyle: true, credentials: { accessKeyId: ceph.accessKey, secretAccessKey: ceph.secretKey } });
  const st = (d as unknown as { settings: S3Settings }).settings;
  const key = `server-a/acct/.partial-x/files.tar`;
  const w = new StreamWriter(d.createWriteStream('acct/.partial-x/files.tar'));
  const data = crypto.randomBytes(17 << 20);
  await w.write(data.subarray(0, 12 << 20));
  let parts = 0;
  for (let i = 0; i < 100 && parts < 2; i++) {
    const uploads = (await s3.send(new ListMultipartUploadsCommand({ Bucket: st.bucket, Prefix: key }))).Uploads ?? [];
    if (uploads.length === 1) parts = (await s3.send(new ListPartsCommand({ Bucket: st.bucket, Key: key, UploadId: uploads[0]!.UploadId }))).Parts?.length ?? 0;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(parts, 2, 'two parts of 5 MiB are stored before the stream has ended');
  assert.equal(await d.exists('acct/.partial-x/files.tar'), false, 'no object before the end');
  await w.write(data.subarray(12 << 20));
  await w.end();
  assert.ok((await d.readFile('acct/.partial-x/files.tar')).equals(data));
  const head = await s3.send(new HeadObjectCommand({ Bucket: st.bucket, Key: key }));
  assert.match(head.ETag ?? '', /-4"$/, 'a multipart object of 4 parts');
  s3.destroy();
});

test('s3: an empty stream makes an empty object; flush waits for streams ended but not awaited', async () => {
  const d = await fresh();
  await d.open();
  const empty = d.createWriteStream('acct/empty');
  empty.end();
  const payload = crypto.randomBytes(6 << 20);
  const big = d.createWriteStream('acct/big');
  big.end(payload);
  await d.flush(['acct']);
  assert.equal((await d.readFile('acct/empty')).length, 0);
  assert.ok((await d.readFile('acct/big')).equals(payload), 'complete once flush has resolved');
  assert.deepEqual((await d.list('acct')).map((e) => [e.name, e.size]), [['big', 6 << 20], ['empty', 0]]);
});

test('s3: a stream destroyed midway leaves no object and no incomplete upload', async () => {
  const d = await fresh({ partSizeMb: 5, parallelTransfers: 1 });
  await d.open();
  const st = (d as unknown as { settings: S3Settings }).settings;
  const s3 = new S3Client({ endpoint: ceph.endpoint, region: ceph.region, forcePathStyle: true, credentials: { accessKeyId: ceph.accessKey, secretAccessKey: ceph.secretKey } });
  const stream = d.createWriteStream('acct/.partial-y/files.tar');
  const w = new StreamWriter(stream);
  await w.write(crypto.randomBytes(11 << 20));
  stream.destroy(new Error('the worker died'));
  let left = -1;
  for (let i = 0; i < 100 && left !== 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    left = ((await s3.send(new ListMultipartUploadsCommand({ Bucket: st.bucket }))).Uploads ?? []).length;
  }
  assert.equal(left, 0, 'the multipart upload was aborted');
  assert.equal(await d.exists('acct/.partial-y/files.tar'), false);
  s3.destroy();
});

test('s3: stale multipart uploads under this server\'s folder are swept, another server\'s are left alone', async () => {
  const d = await fresh();
  await d.open();
  const st = (d as unknown as { settings: S3Settings }).settings;
  const s3 = new S3Client({ endpoint: ceph.endpoint, region: ceph.region, forcePathStyle: true, credentials: { accessKeyId: ceph.accessKey, secretAccessKey: ceph.secretKey } });
  // What a run killed mid-upload leaves: an upload with a part, never completed.
  for (const key of ['server-a/acct/.partial-z/files.tar', 'server-b/acct/.partial-z/files.tar']) {
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: st.bucket, Key: key }));
    await s3.send(new UploadPartCommand({ Bucket: st.bucket, Key: key, UploadId, PartNumber: 1, Body: Buffer.alloc(1024, 1) }));
  }
  assert.equal(await d.abortStaleUploads(3600_000), 0, 'a recent upload may belong to a run still going');
  assert.equal(await d.abortStaleUploads(0), 1);
  const left = ((await s3.send(new ListMultipartUploadsCommand({ Bucket: st.bucket }))).Uploads ?? []).map((u) => u.Key);
  assert.deepEqual(left, ['server-b/acct/.partial-z/files.tar']);
  s3.destroy();
});

// ---------------------------------------------------------------------------------------------
// Through the CLI: an s3 destination as a provider adds and uses it.

test('an s3 destination is added with its secret encrypted and masked, and its folder named after the server', () => {
  const d = ok(cli(dataDir, s3Args('bucket', ['--prefix', 'tidemark/backups', '--server-folder', 'server-a'])));
  assert.equal(d.type, 's3');
  assert.equal(d.settings.secretAccessKey, '********');
  assert.equal(d.settings.accessKeyId, ceph.accessKey);
  assert.equal(d.settings.serverFolder, 'server-a');
  assert.equal(d.reachable, true);
  assert.equal(d.space, null, 'no quota stated: the free space is unknown');
  assert.equal(d.spaceKnown, false);
  assert.match(d.warning, /plain http/);
  const stored = fs.readFileSync(path.join(dataDir, 'tidemark.sqlite')).toString('latin1');
  assert.ok(!stored.includes(ceph.secretKey), 'the secret is not stored in clear');
  for (const args of [['destination', 'show', 'bucket'], ['destination', 'list']]) {
    const shown = cli(dataDir, args);
    assert.equal(shown.code, 0);
    assert.ok(!shown.stdout.includes(ceph.secretKey), `${args.join(' ')} never prints the secret`);
  }
  const defaulted = ok(cli(dataDir, s3Args('default-folder')));
  assert.equal(defaulted.settings.serverFolder, os.hostname().toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 64) || 'server');
  ok(cli(dataDir, ['destination', 'remove', 'default-folder']));
});

for (const structure of ['archive', 'compressed'] as const) {
  test(`${structure} on s3: byte-exact round trip of the tricky tree, one file restored with ranged GETs`, () => {
    ok(cli(dataDir, ['job', 'add', '--name', `s3-${structure}`, '--destination', 'bucket', '--structure', structure, '--accounts', account.username, '--items', 'files']));
    const before = snapshotTree(account.home, { skip: (p) => p.startsWith('tidemark-restore-') });
    const r = ok(cli(dataDir, ['backup', '--job', `s3-${structure}`, '--wait']));
    assert.equal(r.results[0].status, 'completed', JSON.stringify(r.results));
    const snapshot = r.snapshots[0] as string;
    treeAtBackup.set(snapshot, before);
    const listed = ok(cli(dataDir, ['destination', 'browse', 'bucket', `${account.username}/${snapshot}`])) as { name: string; size: number }[];
    const data = listed.find((e) => e.name === (structure === 'archive' ? 'files.tar' : 'files.tar.gz'))!;
    assert.ok(data.size > 10 << 20, 'the archive is on the bucket under its final name');
    assert.ok(!listed.some((e) => e.name.startsWith('.partial')));

    const restored = ok(cli(dataDir, ['restore', snapshot, '--into-folder', '--wait']));
    const folder = path.join(account.home, restored.folder);
    try {
      assert.deepEqual(diffTrees(before, snapshotTree(folder)), []);
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }

    fs.writeFileSync(path.join(account.home, 'public_html/index.php'), 'overwritten');
    const from = gatewayLogLines();
    ok(cli(dataDir, ['restore', snapshot, '--path', 'public_html/index.php', '--wait']));
    assert.equal(fs.readFileSync(path.join(account.home, 'public_html/index.php'), 'utf8'), '<?php echo "hello"; ?>\n');
    const reads = gatewayRequests(structure === 'archive' ? '/files.tar' : '/files.tar.gz', from).filter((q) => q.method === 'GET');
    assert.ok(reads.length > 0, 'the restore read the archive');
    const read = reads.reduce((n, q) => n + q.bytes, 0);
    assert.ok(reads.every((q) => q.status === 206 || q.status === 200), JSON.stringify(reads));
    assert.ok(read < data.size / 4, `one small file costs a small part of the archive (${read} of ${data.size} bytes): ${JSON.stringify(reads)}`);
  });
}

test('s3 destination actions: validate reports latency, disable stops backups, visibility, remove refused while a job uses it', () => {
  const v = ok(cli(dataDir, ['destination', 'validate', 'bucket']));
  assert.equal(v.ok, true, v.error);
  assert.equal(typeof v.latencyMs, 'number');
  assert.equal(typeof v.writeReadMs, 'number');
  assert.equal(v.space, null);
  const probes = ok(cli(dataDir, ['destination', 'browse', 'bucket'])) as { name: string }[];
  assert.ok(!probes.some((e) => e.name.startsWith('.tidemark-probe')), 'the probe was deleted');

  ok(cli(dataDir, ['destination', 'disable', 'bucket']));
  const refused = cli(dataDir, ['backup', '--job', 's3-archive', '--wait']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stdout + refused.stderr, /disabled/);
  ok(cli(dataDir, ['destination', 'enable', 'bucket']));
  assert.equal(ok(cli(dataDir, ['destination', 'visibility', 'bucket', '--hidden'])).snapshotsVisible, false);
  assert.equal(ok(cli(dataDir, ['destination', 'visibility', 'bucket', '--visible'])).snapshotsVisible, true);

  const busy = cli(dataDir, ['destination', 'remove', 'bucket']);
  assert.notEqual(busy.code, 0);
  assert.match(busy.json.error, /used by job\(s\): s3-archive, s3-compressed/);
});

test('s3 free-space limit: refused without a stated quota; with one, a backup below the limit does not start', () => {
  const noQuota = cli(dataDir, ['destination', 'edit', 'bucket', '--free-space-limit', '100']);
  assert.notEqual(noQuota.code, 0);
  assert.match(noQuota.json.error, /reports no free space; state its quota/);
  const d = ok(cli(dataDir, ['destination', 'edit', 'bucket', '--quota', '1', '--free-space-limit', '990']));
  assert.deepEqual(d.changed.sort(), ['freeSpaceLimitMb', 'quotaGb']);
  assert.ok(d.space.totalBytes === 1e9 && d.space.freeBytes < 1e9 - (20 << 20), `the bucket's contents count against the quota: ${JSON.stringify(d.space)}`);
  const r = cli(dataDir, ['backup', '--job', 's3-archive', '--wait']);
  assert.notEqual(r.code, 0);
  assert.match(r.stdout + r.stderr, /MB free, below its limit of 990 MB/);
  ok(cli(dataDir, ['destination', 'edit', 'bucket', '--free-space-limit', '0']));
});

test('managing an s3 destination: settings of other types are refused; a new folder that lacks the cataloged snapshots is refused unless they are forgotten', () => {
  const wrongType = cli(dataDir, ['destination', 'edit', 'bucket', '--path', '/srv/x']);
  assert.equal(wrongType.code, 2, 'a setting the type does not have is a malformed command line');
  assert.match(wrongType.json.error, /path: only local and ssh destinations have this setting/);
  const hostOnly = cli(dataDir, ['destination', 'edit', 'bucket', '--host', 'example.org']);
  assert.equal(hostOnly.code, 2);
  assert.match(hostOnly.json.error, /host: only ssh destinations have this setting/);
  const moved = cli(dataDir, ['destination', 'edit', 'bucket', '--server-folder', 'elsewhere']);
  assert.notEqual(moved.code, 0);
  assert.match(moved.json.error, /2 of the 2 snapshots cataloged on destination "bucket" are not at s3:\/\/[^ ]+\/tidemark\/backups\/elsewhere/);
  const bad = cli(dataDir, ['destination', 'edit', 'bucket', '--endpoint', `${ceph.endpoint}/some/path`]);
  assert.match(bad.json.error, /endpoint: is the server alone/);
  const renamed = ok(cli(dataDir, ['destination', 'edit', 'bucket', '--parallel', '4', '--part-size', '6']));
  assert.deepEqual(renamed.changed.sort(), ['parallelTransfers', 'partSizeMb']);
  assert.equal(renamed.settings.secretAccessKey, '********', 'the stored secret is kept');
  assert.equal(ok(cli(dataDir, ['destination', 'validate', 'bucket'])).ok, true);
});

test('many servers, one bucket: a second server writes under its own folder, and a fresh state store reindexes and restores the first server\'s snapshots', () => {
  const original = (ok(cli(dataDir, ['snapshot', 'list'])) as { id: string; destination: string }[]).filter((s) => s.destination === 'bucket');
  assert.equal(original.length, 2);
  const other = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  try {
    // Server B's own destination on the same bucket and prefix: its folder is its own.
    ok(cli(other, s3Args('shared', ['--prefix', 'tidemark/backups', '--server-folder', 'server-b'])));
    const top = ok(cli(other, ['destination', 'browse', 'shared'])) as { name: string }[];
    assert.deepEqual(top.map((e) => e.name), ['tidemark.json'], 'server B sees only its own folder');
    // Disaster recovery: server A is gone; B adopts its folder, reindexes it, restores from it.
    ok(cli(other, s3Args('server-a', ['--prefix', 'tidemark/backups', '--server-folder', 'server-a'])));
    const r = ok(cli(other, ['destination', 'reindex', 'server-a']));
    assert.equal(r.found, 2);
    assert.equal(r.added, 2);
    assert.deepEqual(r.problems, []);
    const listed = ok(cli(other, ['snapshot', 'list'])) as { id: string }[];
    assert.deepEqual(listed.map((s) => s.id).sort(), original.map((s) => s.id).sort());
    for (const s of original) {
      const expected = treeAtBackup.get(s.id)!;
      const restored = ok(cli(other, ['restore', s.id, '--into-folder', '--wait']));
      const folder = path.join(account.home, restored.folder);
      try {
        assert.deepEqual(diffTrees(expected, snapshotTree(folder)), [], `snapshot ${s.id} restored on the second server`);
      } finally {
        fs.rmSync(folder, { recursive: true, force: true });
      }
    }
  } finally {
    fs.rmSync(other, { recursive: true, force: true });
  }
});
