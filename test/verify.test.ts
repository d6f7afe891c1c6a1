import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import mysql from 'mysql2/promise';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';
import { startTestMariaDb, type TestMariaDb } from './support/mariadb.js';
import { encodeEntry } from '../server/engine/format/entry.js';
import { flipByte, readIndexFile } from './support/stored-files.js';
import { tarHeaders } from '../server/engine/format/tar.js';
import { layout } from '../server/engine/snapshot-layout.js';

let homeRoot: string;
let account: TestAccount;
let dataDir: string;
let maria: TestMariaDb;
const RANDOM = crypto.randomBytes(300_000);
const dests: string[] = [];

const dbName = (): string => `${account.username}_shop`;
async function sql(query: string, database?: string): Promise<any[]> {
  const conn = await mysql.createConnection({ socketPath: maria.creds.socket!, user: maria.creds.user, multipleStatements: true, ...(database ? { database } : {}) });
  try { return (await conn.query(query))[0] as any[]; } finally { await conn.end(); }
}

before(async () => {
  maria = await startTestMariaDb();
  homeRoot = makeHomeRoot();
  account = createAccount(homeRoot);
  fs.writeFileSync(path.join(account.home, 'small.txt'), 'small');
  fs.writeFileSync(path.join(account.home, 'random.bin'), RANDOM);
  fs.mkdirSync(path.join(account.home, 'site'));
  fs.writeFileSync(path.join(account.home, 'site', 'index.html'), '<h1>hello</h1>\n'.repeat(100));
  fs.writeFileSync(path.join(account.home, 'empty'), '');
  execFileSync('chown', ['-R', `${account.uid}:${account.gid}`, account.home]);
  await sql(`CREATE DATABASE \`${dbName()}\``);
  await sql(`CREATE TABLE items (id INT PRIMARY KEY, label VARCHAR(50)); INSERT INTO items VALUES (1, 'from the backup');`, dbName());
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot], mysql: maria.creds });
});

after(async () => {
  removeAccount(account);
  for (const d of [homeRoot, dataDir, ...dests]) fs.rmSync(d, { recursive: true, force: true });
  await maria?.stop();
});

/** A destination and a job of its own for one test. */
function setup(name: string, structure: string, items = 'files'): string {
  const dir = makeDestinationDir();
  dests.push(dir);
  ok(cli(dataDir, ['destination', 'add', '--name', name, '--type', 'local', '--path', dir]));
  ok(cli(dataDir, ['job', 'add', '--name', name, '--destination', name, '--structure', structure, '--accounts', account.username, '--items', items]));
  return dir;
}

const backup = (job: string): string => {
  const r = ok(cli(dataDir, ['backup', '--job', job, '--wait']));
  assert.equal(r.results[0].status, 'completed', JSON.stringify(r.results[0]));
  return r.snapshots[0] as string;
};

const statusOf = (id: string): string => ok(cli(dataDir, ['snapshot', 'show', id])).status;
/** Temporary files a restore writer makes beside the files it restores. */
const leftovers = (dir: string): string[] => fs.readdirSync(dir, { recursive: true }).map(String).filter((n) => path.basename(n).startsWith('.tidemark-'));

test('regression: a flipped byte in a blob restores with exit 0 and no warning', async () => {
  const destDir = setup('blobflip', 'incremental');
  const id = backup('blobflip');
  const snapDir = path.join(destDir, account.username, id);
  const entry = (await readIndexFile(path.join(snapDir, layout.index))).find((e) => e.path === 'random.bin')!;
  assert.ok(entry.hash, 'the index holds the content hash');
  assert.equal(entry.hash.toString('hex'), crypto.createHash('sha256').update(RANDOM).digest('hex'));
  const blob = layout.blob(entry.dataRef);
  flipByte(path.join(snapDir, blob), 1000);

  // In place, over a file the account changed since: the damaged copy never takes its name.
  fs.writeFileSync(path.join(account.home, 'random.bin'), 'changed since');
  const r = cli(dataDir, ['restore', id, '--path', 'random.bin']);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.json.error, /random\.bin/);
  assert.match(r.json.error, /does not match its hash/);
  assert.equal(fs.readFileSync(path.join(account.home, 'random.bin'), 'utf8'), 'changed since');
  assert.deepEqual(leftovers(account.home), []);
  assert.equal(statusOf(id), 'damaged', 'the failed restore marks the snapshot');

  const v = cli(dataDir, ['snapshot', 'verify', id]);
  assert.equal(v.code, 1);
  assert.equal(v.json.result, 'damaged');
  assert.deepEqual(v.json.damaged.map((d: any) => [d.file, d.path]), [[blob, 'random.bin']]);
  const task = ok(cli(dataDir, ['task', 'show', String(v.json.task)]));
  assert.equal(task.status, 'failed');
  assert.ok(task.log.some((l: any) => l.message.includes(blob) && l.message.includes('random.bin')), JSON.stringify(task.log));
  const listed = ok(cli(dataDir, ['snapshot', 'list', '--destination', 'blobflip']));
  assert.equal(listed[0].status, 'damaged');

  // The undamaged files of the same snapshot still restore; a download of the damaged one fails without output.
  fs.rmSync(path.join(account.home, 'small.txt'));
  ok(cli(dataDir, ['restore', id, '--path', 'small.txt']));
  assert.equal(fs.readFileSync(path.join(account.home, 'small.txt'), 'utf8'), 'small');
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-out-'));
  const d = cli(dataDir, ['download', id, '--path', 'random.bin', '--out', path.join(outDir, 'x.tar.gz')]);
  assert.equal(d.code, 1);
  assert.match(d.json.error, /random\.bin.*does not match its hash/);
  assert.deepEqual(fs.readdirSync(outDir), [], 'no output and no .part file');
  fs.rmSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(account.home, 'random.bin'), RANDOM);
  fs.chownSync(path.join(account.home, 'random.bin'), account.uid, account.gid);
});

test('regression: a damaged blob is hard-linked into the next snapshot', async () => {
  const destDir = setup('blobbase', 'incremental');
  const first = backup('blobbase');
  const firstDir = path.join(destDir, account.username, first);
  const entry = (await readIndexFile(path.join(firstDir, layout.index))).find((e) => e.path === 'random.bin')!;
  flipByte(path.join(firstDir, layout.blob(entry.dataRef)), 5);
  assert.equal(cli(dataDir, ['snapshot', 'verify', first]).code, 1);
  assert.equal(statusOf(first), 'damaged');

  const second = backup('blobbase');
  const secondDir = path.join(destDir, account.username, second);
  const entries = await readIndexFile(path.join(secondDir, layout.index));
  const again = entries.find((e) => e.path === 'random.bin')!;
  const a = fs.statSync(path.join(firstDir, layout.blob(entry.dataRef)));
  const b = fs.statSync(path.join(secondDir, layout.blob(again.dataRef)));
  assert.notEqual(a.ino, b.ino, 'the damaged blob is not linked into the new snapshot');
  assert.ok(entries.filter((e) => e.kind === 'f').every((e) => fs.statSync(path.join(secondDir, layout.blob(e.dataRef))).nlink === 1), 'a full copy: nothing linked from the damaged base');
  const v = ok(cli(dataDir, ['snapshot', 'verify', second]));
  assert.equal(v.result, 'ok');
  const task = ok(cli(dataDir, ['task', 'list'])).find((t: any) => t.type === 'backup' && t.snapshot === second);
  const log = ok(cli(dataDir, ['task', 'show', String(task.id)])).log;
  assert.ok(log.some((l: any) => l.level === 'warn' && l.message.includes(first) && /damaged/.test(l.message)), JSON.stringify(log));
  // The next run links from the good snapshot again.
  const third = backup('blobbase');
  const thirdEntry = (await readIndexFile(path.join(destDir, account.username, third, layout.index))).find((e) => e.path === 'random.bin')!;
  assert.equal(fs.statSync(path.join(destDir, account.username, third, layout.blob(thirdEntry.dataRef))).ino, b.ino);
  assert.ok(thirdEntry.hash?.equals(again.hash!), 'the hash is carried over with the linked blob');
});

test('regression: a flipped byte in files.tar restores silently', async () => {
  const destDir = setup('tarflip', 'archive');
  const id = backup('tarflip');
  const snapDir = path.join(destDir, account.username, id);
  const entry = (await readIndexFile(path.join(snapDir, layout.index))).find((e) => e.path === 'site/index.html')!;
  assert.ok(entry.hash);
  const manifest = JSON.parse(fs.readFileSync(path.join(snapDir, layout.manifest), 'utf8'));
  // Integrity version 2: the tar digest (test/archive-integrity.test.ts, test/tar-pump.test.ts).
  assert.equal(manifest.integrity.version, 2);
  assert.match(manifest.integrity.tar, /^[0-9a-f]{64}$/);
  flipByte(path.join(snapDir, 'files.tar'), entry.dataRef + tarHeaders(entry).length + 20);

  const r = cli(dataDir, ['restore', id, '--into-folder']);
  assert.equal(r.code, 1);
  assert.match(r.json.error, /site\/index\.html.*does not match its hash/);
  const v = cli(dataDir, ['snapshot', 'verify', id]);
  assert.equal(v.code, 1);
  const named = v.json.damaged.map((d: any) => `${d.file} ${d.path ?? ''}`.trim()).sort();
  assert.deepEqual(named, ['files.tar', 'files.tar site/index.html']);
  assert.equal(statusOf(id), 'damaged');
});

test('a truncated files.tar.gz is found by verify and refused by restore', () => {
  const destDir = setup('tgz', 'compressed');
  const id = backup('tgz');
  const file = path.join(destDir, account.username, id, 'files.tar.gz');
  fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2));
  const v = cli(dataDir, ['snapshot', 'verify', id]);
  assert.equal(v.code, 1);
  assert.ok(v.json.damaged.length >= 1);
  assert.ok(v.json.damaged.every((d: any) => d.file === 'files.tar.gz'), JSON.stringify(v.json.damaged));
  assert.match(v.json.damaged[0].problem, /does not match its hash/);
  const r = cli(dataDir, ['restore', id, '--into-folder']);
  assert.equal(r.code, 1);
  assert.match(r.json.error, /damaged|unexpected end/);
});

test('regression: a missing index.bin.gz crashes restore, snapshot files and download', () => {
  const destDir = setup('noindex', 'incremental');
  const id = backup('noindex');
  fs.rmSync(path.join(destDir, account.username, id, layout.index));
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-out-'));
  const runs = {
    restore: cli(dataDir, ['restore', id]),
    files: cli(dataDir, ['snapshot', 'files', id]),
    download: cli(dataDir, ['download', id, '--out', path.join(outDir, 'all.tar.gz')]),
  };
  for (const [what, r] of Object.entries(runs)) {
    assert.equal(r.code, 1, `${what}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /, `${what}: no stack trace`);
    assert.match(r.json.error, new RegExp(`${id}.*index\\.bin\\.gz.*not found`), `${what}: ${r.json.error}`);
  }
  assert.deepEqual(fs.readdirSync(outDir), [], 'no .part file left');
  fs.rmSync(outDir, { recursive: true });
  const v = cli(dataDir, ['snapshot', 'verify', id]);
  assert.equal(v.code, 1);
  assert.equal(v.json.damaged[0].file, 'index.bin.gz');
  assert.match(v.json.damaged[0].problem, /not found/);
});

test('a corrupted dump is found by verify and refused by restore', async () => {
  const destDir = setup('dumps', 'incremental', 'files,databases');
  const id = backup('dumps');
  await sql(`UPDATE items SET label = 'changed since' WHERE id = 1`, dbName());
  const dump = path.join(destDir, account.username, id, layout.database(dbName()));
  const manifest = JSON.parse(fs.readFileSync(path.join(destDir, account.username, id, layout.manifest), 'utf8'));
  assert.equal(manifest.databases[0].sha256, crypto.createHash('sha256').update(fs.readFileSync(dump)).digest('hex'));
  flipByte(dump, Math.floor(fs.statSync(dump).size / 2));
  const v = cli(dataDir, ['snapshot', 'verify', id]);
  assert.equal(v.code, 1);
  assert.deepEqual(v.json.damaged.map((d: any) => d.file), [layout.database(dbName())]);
  const r = cli(dataDir, ['restore', id, '--database', dbName()]);
  assert.equal(r.code, 1);
  assert.match(r.json.error, new RegExp(`${dbName()}\\.sql\\.gz does not match its hash`));
  assert.equal((await sql('SELECT label FROM items WHERE id = 1', dbName()))[0].label, 'changed since', 'nothing of the damaged dump ran');
});

test('destination verify --sample', () => {
  setup('sampled', 'archive');
  const ids = [backup('sampled'), backup('sampled'), backup('sampled'), backup('sampled')];
  const all = ok(cli(dataDir, ['destination', 'verify', 'sampled']));
  assert.equal(all.snapshots, 4);
  assert.equal(all.verified, 4);
  assert.equal(all.damaged, 0);
  assert.deepEqual(all.reports.map((r: any) => r.snapshot).sort(), [...ids].sort());
  assert.ok(all.reports.every((r: any) => r.result === 'ok' && r.checked.files >= 4));
  const half = ok(cli(dataDir, ['destination', 'verify', 'sampled', '--sample', '50']));
  assert.equal(half.verified, 2);
  assert.equal(new Set(half.reports.map((r: any) => r.snapshot)).size, 2);
  const one = ok(cli(dataDir, ['destination', 'verify', 'sampled', '--sample', '1', '--account', account.username]));
  assert.equal(one.verified, 1, 'a share above 0 verifies at least one');
  for (const bad of ['0', '101', 'abc', '-5']) {
    const r = cli(dataDir, ['destination', 'verify', 'sampled', '--sample', bad]);
    assert.equal(r.code, 2, `--sample ${bad}`);
    assert.match(r.json.error, /--sample/);
  }
  const none = ok(cli(dataDir, ['destination', 'verify', 'sampled', '--account', 'nosuchaccount']));
  assert.equal(none.verified, 0);
});

test('an index written before hashes existed still restores, and verify reports "no hashes"', async () => {
  const destDir = setup('oldformat', 'compressed', 'files,databases');
  const id = backup('oldformat');
  const snapDir = path.join(destDir, account.username, id);
  // Rewritten as a snapshot of the first format: no hash in any entry, none in the manifest.
  const entries = await readIndexFile(path.join(snapDir, layout.index));
  fs.writeFileSync(path.join(snapDir, layout.index), zlib.gzipSync(Buffer.concat(entries.map((e) => { delete e.hash; return encodeEntry(e); }))));
  const manifest = JSON.parse(fs.readFileSync(path.join(snapDir, layout.manifest), 'utf8'));
  delete manifest.integrity;
  for (const d of manifest.databases) delete d.sha256;
  fs.writeFileSync(path.join(snapDir, layout.manifest), JSON.stringify(manifest));
  assert.ok((await readIndexFile(path.join(snapDir, layout.index))).every((e) => e.hash === undefined));

  const v = ok(cli(dataDir, ['snapshot', 'verify', id]));
  assert.equal(v.result, 'no hashes');
  assert.equal(v.hashes, false);
  assert.deepEqual(v.damaged, []);
  const r = ok(cli(dataDir, ['restore', id, '--into-folder']));
  const folder = path.join(account.home, r.folder);
  assert.deepEqual(fs.readFileSync(path.join(folder, 'random.bin')), RANDOM);
  assert.equal(fs.readFileSync(path.join(folder, 'site', 'index.html'), 'utf8'), '<h1>hello</h1>\n'.repeat(100));
  fs.rmSync(folder, { recursive: true });
  // Its gzip is still checked: a damaged old dump is found without a hash.
  flipByte(path.join(snapDir, layout.database(dbName())), 40);
  const bad = cli(dataDir, ['snapshot', 'verify', id]);
  assert.equal(bad.code, 1);
  assert.deepEqual(bad.json.damaged.map((d: any) => d.file), [layout.database(dbName())]);
});

test('the daily verification share verifies that share of all snapshots and keeps the damaged marked', async () => {
  const { openContext } = await import('../server/services/context.js');
  const { verifyDailyShare } = await import('../server/services/verify.js');
  fs.writeFileSync(path.join(dataDir, 'config.json'), JSON.stringify({ panel: 'standalone', homeRoots: [homeRoot], mysql: maria.creds, verification: { dailyPercent: 25, at: '04:00' } }));
  const ctx = await openContext(dataDir);
  try {
    assert.equal(ctx.config.verification.dailyPercent, 25);
    const all = ctx.store.snapshots.list();
    const share = await verifyDailyShare(ctx, ctx.config.verification.dailyPercent);
    assert.equal(share.verified, Math.ceil(all.length / 4));
    const tasks = ctx.store.tasks.list(200).filter((t) => t.type === 'verify' && t.priority === 10);
    assert.equal(tasks.length, share.verified, 'one low-priority verify task each');
    const everything = await verifyDailyShare(ctx, 100);
    assert.equal(everything.verified, all.length);
    assert.equal(everything.damaged, all.filter((s) => s.status === 'damaged').length);
    assert.ok(everything.damaged >= 4, 'the snapshots damaged by the tests above are found again');
  } finally {
    ctx.close();
  }
});

test('a damaged snapshot is marked on the pages and verified through the JSON API', async () => {
  const { startWebFixture, WebClient } = await import('./support/web-daemon.js');
  const fx = await startWebFixture();
  try {
    const token = ok(cli(fx.dataDir, ['api-token', 'create', '--name', 'verifier'])).token as string;
    const api = async (url: string, body: unknown): Promise<{ status: number; json: any }> => {
      const res = await fetch(`${fx.base}/api/v1${url}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, json: await res.json() };
    };
    const id = fx.visible.alice;
    const whole = await api(`/snapshots/${id}/verify`, {});
    assert.equal(whole.status, 200);
    assert.equal(whole.json.result, 'ok');
    const destDir = ok(cli(fx.dataDir, ['destination', 'show', 'shown'])).settings.path as string;
    const snapDir = path.join(destDir, fx.alice.username, id);
    const entry = (await readIndexFile(path.join(snapDir, layout.index))).find((e) => e.path === 'notes.txt')!;
    flipByte(path.join(snapDir, layout.blob(entry.dataRef)), 3);
    const r = await api('/destinations/shown/verify', { account: fx.alice.username });
    assert.equal(r.status, 200);
    assert.equal(r.json.damaged, 1);
    assert.deepEqual(r.json.reports[0].damaged.map((d: any) => d.path), ['notes.txt']);
    assert.equal((await api('/destinations/shown/verify', { samplePercent: 0 })).status, 400);

    const alice = new WebClient(fx.base);
    await alice.get(fx.loginUrl(fx.alice.username, 'user'));
    const mine = await alice.get('/snapshots');
    assert.match(mine.body, /class="status status-damaged">Damaged</);
    const admin = new WebClient(fx.base);
    await admin.get(fx.loginUrl('root', 'admin'));
    const page = await admin.get(`/admin/accounts/${fx.alice.username}`);
    assert.match(page.body, /class="status status-damaged">Damaged</);
    // Bob's snapshot on the same destination is not concerned.
    assert.equal(ok(cli(fx.dataDir, ['snapshot', 'show', fx.visible.bob])).status, 'completed');
  } finally {
    await fx.stop();
  }
});
