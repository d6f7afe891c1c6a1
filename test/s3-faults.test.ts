/**
 * An s3 destination when things go wrong: refused or expired credentials, a missing bucket, a
 * gateway answering 503 or dropping the connection in the middle of an upload. Each ends in a
 * failed task with a clear message, no snapshot listed, nothing left half-made in the bucket;
 * transient faults are retried with backoff and the run succeeds. The faults come from a TCP
 * proxy in front of the real radosgw (test/support/fault-proxy.ts).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { S3Client, ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, cliAsync, makeDataDir, ok, type CliResult } from './support/cli.js';
import { diffTrees, snapshotTree } from './support/tree.js';
import { sharedCeph, type CephCluster } from './support/ceph.js';
import { S3Destination } from '../server/destinations/s3.js';
import { S3_DEFAULTS } from '../server/destinations/s3-settings.js';
import { StreamWriter } from '../server/util/stream-writer.js';
import { startFaultProxy, type FaultProxy, type ProxiedRequest } from './support/fault-proxy.js';

let ceph: CephCluster;
let proxy: FaultProxy;
let homeRoot: string;
let account: TestAccount;
let dataDir: string;
let secretsDir: string;
let bucket: string;
let s3: S3Client;

before(async () => {
  ceph = await sharedCeph();
  proxy = await startFaultProxy(Number(new URL(ceph.endpoint).port));
  homeRoot = makeHomeRoot();
  account = createAccount(homeRoot);
  fs.mkdirSync(path.join(account.home, 'public_html'));
  fs.writeFileSync(path.join(account.home, 'public_html/index.html'), 'hello');
  // Three parts of 5 MiB.
  fs.writeFileSync(path.join(account.home, 'public_html/big.bin'), crypto.randomBytes(12 << 20));
  for (const p of ['public_html', 'public_html/index.html', 'public_html/big.bin']) fs.chownSync(path.join(account.home, p), account.uid, account.gid);
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  secretsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-secrets-'));
  fs.writeFileSync(path.join(secretsDir, 'secret'), ceph.secretKey, { mode: 0o600 });
  fs.writeFileSync(path.join(secretsDir, 'wrong'), 'not-the-secret', { mode: 0o600 });
  bucket = await ceph.newBucket('faults');
  s3 = new S3Client({ endpoint: ceph.endpoint, region: ceph.region, forcePathStyle: true, credentials: { accessKeyId: ceph.accessKey, secretAccessKey: ceph.secretKey } });
});

after(async () => {
  s3?.destroy();
  await proxy?.close();
  if (account) removeAccount(account);
  for (const d of [homeRoot, dataDir, secretsDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

const addArgs = (name: string, over: { endpoint?: string; bucket?: string; accessKey?: string; secretFile?: string } = {}): string[] => [
  'destination', 'add', '--name', name, '--type', 's3', '--endpoint', over.endpoint ?? proxy.endpoint, '--bucket', over.bucket ?? bucket,
  '--access-key', over.accessKey ?? ceph.accessKey, '--secret-file', over.secretFile ?? path.join(secretsDir, 'secret'),
  '--server-folder', name, '--part-size', '5', '--parallel', '1', '--attempts', '4'];

/** The CLI in a child process: the proxy runs in this one and must keep answering. */
const run = async (args: string[]): Promise<CliResult> => cliAsync(dataDir, args).result;

const isPart = (n: number) => (r: ProxiedRequest): boolean => r.method === 'PUT' && new RegExp(`[?&]partNumber=${n}(&|$)`).test(r.target);
const anyPart = (r: ProxiedRequest): boolean => r.method === 'PUT' && /[?&]partNumber=\d+/.test(r.target);

/** The run failed as a whole: one failed task, no snapshot; returns its message. */
function failedRun(r: CliResult): string {
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.deepEqual(r.json.snapshots, []);
  const [result] = r.json.results;
  assert.equal(result.status, 'failed');
  assert.equal(typeof result.error, 'string');
  assert.ok(!(r.stdout + r.stderr).includes(ceph.secretKey), 'the secret is never printed');
  return result.error as string;
}

/** Nothing half-made under the server's folder: no partial snapshot, no incomplete upload. */
async function assertNothingLeft(folder: string): Promise<void> {
  const keys = ((await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${folder}/` }))).Contents ?? []).map((o) => o.Key!);
  assert.deepEqual(keys.filter((k) => k.includes('.partial-') || /\/\d{8}T\d{6}Z-[0-9a-f]{4}\//.test(k)), [], 'no snapshot objects');
  let uploads: string[] = [];
  for (let i = 0; i < 50; i++) {
    uploads = ((await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `${folder}/` }))).Uploads ?? []).map((u) => u.Key!);
    if (uploads.length === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(uploads, [], 'no incomplete multipart upload');
}

test('refused credentials and a missing bucket are clear errors when the destination is added, and the secret is not printed', async () => {
  const wrong = await run(addArgs('wrong', { secretFile: path.join(secretsDir, 'wrong') }));
  assert.equal(wrong.code, 1);
  assert.match(wrong.json.error, /refused the credentials \(SignatureDoesNotMatch\): check the access key and the secret/);
  const unknown = await run(addArgs('unknown', { accessKey: 'NOSUCHKEY0000000000' }));
  assert.match(unknown.json.error, /refused the credentials \(InvalidAccessKeyId\)/);
  const missing = await run(addArgs('missing', { bucket: 'no-such-bucket-here' }));
  assert.match(missing.json.error, /the bucket "no-such-bucket-here" does not exist at http:\/\/127\.0\.0\.1:\d+/);
  for (const r of [wrong, unknown, missing]) assert.ok(!(r.stdout + r.stderr).includes(ceph.secretKey));
  assert.deepEqual(ok(cli(dataDir, ['destination', 'list'])), [], 'nothing was added');
});

test('credentials that expire after the destination was added: the backup fails clearly, nothing is listed', async () => {
  const key = `EXPIRING${crypto.randomBytes(6).toString('hex').toUpperCase()}`;
  const secret = crypto.randomBytes(20).toString('hex');
  await ceph.admin(['key', 'create', '--uid', 'tidemark-test', '--key-type', 's3', '--access-key', key, '--secret-key', secret]);
  fs.writeFileSync(path.join(secretsDir, 'expiring'), secret, { mode: 0o600 });
  ok(await run(addArgs('expiring', { accessKey: key, secretFile: path.join(secretsDir, 'expiring') })));
  ok(cli(dataDir, ['job', 'add', '--name', 'expiring', '--destination', 'expiring', '--structure', 'archive', '--accounts', account.username, '--items', 'files']));
  await ceph.admin(['key', 'rm', '--uid', 'tidemark-test', '--key-type', 's3', '--access-key', key]);
  const message = failedRun(await run(['backup', '--job', 'expiring', '--wait']));
  assert.match(message, /refused the credentials \(InvalidAccessKeyId\): check the access key and the secret, and that they have not expired/);
  assert.ok(!message.includes(secret));
  await assertNothingLeft('expiring');
});

test('a bucket deleted after the destination was added: the backup fails naming the bucket', async () => {
  const gone = await ceph.newBucket('gone');
  ok(await run(addArgs('gone', { bucket: gone })));
  ok(cli(dataDir, ['job', 'add', '--name', 'gone', '--destination', 'gone', '--structure', 'archive', '--accounts', account.username, '--items', 'files']));
  await ceph.admin(['bucket', 'rm', '--bucket', gone, '--purge-objects']);
  const message = failedRun(await run(['backup', '--job', 'gone', '--wait']));
  assert.match(message, new RegExp(`the bucket "${gone}" does not exist`));
});

test('503 answers and a dropped connection in the middle of an upload are retried with backoff, and the run completes byte-exactly', async () => {
  ok(await run(addArgs('flaky')));
  ok(cli(dataDir, ['job', 'add', '--name', 'flaky', '--destination', 'flaky', '--structure', 'archive', '--accounts', account.username, '--items', 'files']));
  let part1 = 0;
  let part2 = 0;
  proxy.injected.length = 0;
  proxy.rule = (r) => {
    if (isPart(1)(r) && part1++ < 2) return '503';
    if (isPart(2)(r) && part2++ < 1) return 'drop';
    return 'pass';
  };
  const expected = snapshotTree(account.home, { skip: (p) => p.startsWith('tidemark-restore-') });
  let r: CliResult;
  try {
    r = await run(['backup', '--job', 'flaky', '--wait']);
  } finally {
    proxy.rule = () => 'pass';
  }
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.json.results[0].status, 'completed');
  assert.deepEqual(proxy.injected.map((i) => i.fault), ['503', '503', 'drop'], 'the faults happened, and were retried');
  const restored = ok(await run(['restore', r.json.snapshots[0], '--into-folder', '--wait']));
  const folder = path.join(account.home, restored.folder);
  try {
    assert.deepEqual(diffTrees(expected, snapshotTree(folder)), []);
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
});

for (const fault of ['503', 'drop'] as const) {
  test(`a gateway that keeps ${fault === '503' ? 'answering 503' : 'dropping the connection'} mid-upload: the backup fails after its attempts, no half snapshot is listed, the upload is aborted`, async () => {
    const name = `broken-${fault}`;
    ok(await run(addArgs(name)));
    ok(cli(dataDir, ['job', 'add', '--name', name, '--destination', name, '--structure', 'archive', '--accounts', account.username, '--items', 'files']));
    proxy.injected.length = 0;
    proxy.rule = (r) => (isPart(2)(r) ? fault : 'pass');
    let r: CliResult;
    try {
      r = await run(['backup', '--job', name, '--wait']);
    } finally {
      proxy.rule = () => 'pass';
    }
    const message = failedRun(r);
    if (fault === '503') assert.match(message, /the S3 endpoint http:\/\/127\.0\.0\.1:\d+ failed at .*files\.tar: 503 SlowDown after 4 attempts/);
    else assert.match(message, /could not reach the S3 endpoint .* at .*files\.tar: (the connection was reset|the connection was closed by the server) after 4 attempts|socket hang up/);
    assert.equal(proxy.injected.length, 4, 'one request and three retries');
    assert.ok(proxy.injected.every((i) => anyPart(i.req)));
    const listed = ok(cli(dataDir, ['snapshot', 'list'])) as { destination: string }[];
    assert.deepEqual(listed.filter((s) => s.destination === name), []);
    await assertNothingLeft(name);
  });
}

test('a part that fails for good stops the writer at once: the rest of the stream is not uploaded for nothing', { timeout: 120_000 }, async () => {
  const d = new S3Destination({ ...S3_DEFAULTS, endpoint: proxy.endpoint, bucket, serverFolder: 'early-stop', accessKeyId: ceph.accessKey,
    secretAccessKey: ceph.secretKey, partSizeMb: 5, parallelTransfers: 8, maxAttempts: 2 });
  await d.open();
  proxy.injected.length = 0;
  proxy.seen.length = 0;
  // Once part 2 has failed, every later part stalls (never answered), so that what the writer
  // takes in after the failure is bounded by what is in flight, not by how fast this machine
  // uploads during the retry's backoff (a fast machine let 166 MiB through before).
  let failedOnce = false;
  proxy.rule = (r) => {
    if (isPart(2)(r)) { failedOnce = true; return '503'; }
    return failedOnce && anyPart(r) ? 'stall' : 'pass';
  };
  const w = new StreamWriter(d.createWriteStream('acct/.partial-x/files.tar'));
  let written = 0;
  const chunk = Buffer.alloc(1 << 20, 7);
  try {
    await assert.rejects(async () => { for (; written < (200 << 20); written += chunk.length) await w.write(chunk); await w.end(); },
      /503 SlowDown after 2 attempts/);
  } finally {
    proxy.rule = () => 'pass';
  }
  // At most the parts sent before the failure (8 at a time) and the 8 in flight or stalled after
  // it, with the streams' buffers: about 85 MiB, never the whole stream.
  assert.ok(written < (110 << 20), `the writer was stopped after ${written >> 20} MiB of 200`);
  const parts = proxy.seen.filter(anyPart).length;
  assert.ok(parts < 30, `not every part was sent after the failure (${parts} of 40)`);
  await d.close();
  await assertNothingLeft('early-stop');
});
