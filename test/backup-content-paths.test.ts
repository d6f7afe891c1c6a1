import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import type { Readable } from 'node:stream';
import { execFileSync } from 'node:child_process';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { LocalDestination } from '../server/destinations/local.js';
import { backupAccount } from '../server/engine/backup.js';
import { restoreSnapshot } from '../server/engine/restore.js';
import { readIndex } from '../server/engine/snapshot-index.js';
import { verifySnapshotData } from '../server/engine/verify.js';
import { layout } from '../server/engine/snapshot-layout.js';
import { largeBufferReuseHeld } from '../server/native/malloc-policy.js';
import type { Structure } from '../server/store/jobs.js';
import type { Account } from '../server/panels/types.js';

/**
 * The paths content takes through a backup and a restore that the round-trip suites do not
 * single out: small files written and hashed off the event loop, the order of the index
 * while their hashes are on their way, a failing small write, and the sequential reader of
 * a compressed archive.
 */
let homeRoot: string;
let acct: TestAccount;
let account: Account;
const destDirs: string[] = [];

const noMysql = async (): Promise<never> => { throw new Error('no databases here'); };
const noOwnership = async (): Promise<never> => { throw new Error('no databases here'); };

/** A Local destination that counts the reads of each file and can fail the n-th small write. */
class WatchedDestination extends LocalDestination {
  readonly reads = new Map<string, number>();
  failSmallWriteAt = -1;
  private smallWrites = 0;

  override createReadStream(rel: string, range?: { start: number; end?: number }): Readable {
    this.reads.set(rel, (this.reads.get(rel) ?? 0) + 1);
    return super.createReadStream(rel, range);
  }

  override async writeSmallFile(rel: string, parts: Buffer[]): Promise<Buffer> {
    if (this.smallWrites++ === this.failSmallWriteAt) throw Object.assign(new Error('No space left on device'), { code: 'ENOSPC' });
    return super.writeSmallFile(rel, parts);
  }
}

async function newDestination(): Promise<WatchedDestination> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-paths-'));
  fs.chmodSync(dir, 0o700);
  destDirs.push(dir);
  const dest = new WatchedDestination(dir);
  await dest.open();
  return dest;
}

const backup = (dest: LocalDestination, structure: Structure, previousId: string | null = null) => backupAccount({
  account, destination: dest, structure, items: ['files'], excludes: [], jobName: 'paths', previousId, mysql: noMysql,
});

const sha256 = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');

before(() => {
  homeRoot = makeHomeRoot();
  acct = createAccount(homeRoot);
  for (const skel of fs.readdirSync(acct.home)) fs.rmSync(path.join(acct.home, skel), { recursive: true });
  // A file larger than the compressed reader's look-ahead, then many small ones after it.
  fs.mkdirSync(path.join(acct.home, 'a'));
  fs.writeFileSync(path.join(acct.home, 'a/big.bin'), crypto.randomBytes(6 << 20));
  fs.mkdirSync(path.join(acct.home, 'b'));
  for (let i = 0; i < 200; i++) fs.writeFileSync(path.join(acct.home, `b/f${String(i).padStart(3, '0')}.txt`), `file ${i} `.repeat(1 + (i % 50)));
  fs.writeFileSync(path.join(acct.home, 'b/empty'), '');
  // Larger than what is written at once: streamed, and hashed as it streams.
  fs.writeFileSync(path.join(acct.home, 'b/large.bin'), crypto.randomBytes((1 << 20) + 12345));
  execFileSync('chown', ['-R', `${acct.uid}:${acct.gid}`, acct.home]);
  account = { username: acct.username, owner: 'root', home: acct.home, uid: acct.uid, gid: acct.gid, domains: [], databases: [], databaseUsers: [],
    suspended: false, package: null, contactEmail: null };
});

after(() => {
  removeAccount(acct);
  for (const d of [homeRoot, ...destDirs]) fs.rmSync(d, { recursive: true, force: true });
});

test('incremental: every hash in the index is the SHA-256 of the blob stored, and the index keeps the walk order', async () => {
  const dest = await newDestination();
  const m = await backup(dest, 'incremental');
  const dir = layout.snapshotDir(acct.username, m.id);
  const entries = await readIndex(dest, dir);
  const files = entries.filter((e) => e.kind === 'f');
  assert.equal(files.length, 203);
  for (const e of files) {
    const blob = fs.readFileSync(path.join(destDirs.at(-1)!, dir, layout.blob(e.dataRef)));
    const home = fs.readFileSync(path.join(acct.home, e.path));
    assert.ok(blob.equals(home), `${e.path}: stored bytes`);
    assert.equal(e.hash?.toString('hex'), sha256(home), `${e.path}: hash`);
  }
  const paths = entries.map((e) => e.path);
  assert.deepEqual(paths, [...paths].sort((x, y) => Buffer.compare(Buffer.from(x, 'latin1'), Buffer.from(y, 'latin1'))), 'walk order');
  assert.deepEqual((await verifySnapshotData(dest, acct.username, m.id)).damaged, []);
});

test('regression: a second incremental whose worker finished its walk before root read its output lost every record (Node drains the pipes of a child that exits unread)', async () => {
  // As an SSH destination's probe for a server-side clone does, the destination keeps root
  // busy after the previous index was read: the worker, started early, must still be waiting.
  class SlowCloneProbe extends WatchedDestination {
    override async cloneIsServerSide(): Promise<boolean> {
      await new Promise((r) => setTimeout(r, 1500));
      return super.cloneIsServerSide();
    }
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-paths-'));
  fs.chmodSync(dir, 0o700);
  destDirs.push(dir);
  const dest = new SlowCloneProbe(dir);
  await dest.open();
  const first = await backup(dest, 'incremental');
  const second = await backup(dest, 'incremental', first.id);
  assert.equal(second.stats.files, first.stats.files);
  const entries = await readIndex(dest, layout.snapshotDir(acct.username, second.id));
  assert.equal(entries.filter((e) => e.kind === 'f').length, 203);
  assert.equal(second.stats.storedBytes, 0, 'every file linked from the first snapshot');
});

test('a small-file write that fails ends the backup with its error and leaves no snapshot', async () => {
  const dest = await newDestination();
  dest.failSmallWriteAt = 40;
  await assert.rejects(backup(dest, 'incremental'), /no space left on the destination/);
  const accountDir = path.join(destDirs.at(-1)!, acct.username);
  const left = fs.existsSync(accountDir) ? fs.readdirSync(accountDir) : [];
  assert.deepEqual(left.filter((n) => !n.startsWith('.')), [], 'no snapshot folder');
  assert.deepEqual(left.filter((n) => n.startsWith('.partial-')), [], 'the partial folder is removed');
});

/** Counts the small writes still running, and notes whether the partial folder was removed while one was. */
class SlowAfterFailure extends WatchedDestination {
  running = 0;
  removedWhileWriting = false;
  private failed = false;

  override async writeSmallFile(rel: string, parts: Buffer[]): Promise<Buffer> {
    this.running++;
    try {
      if (this.failed) await new Promise((r) => setTimeout(r, 150));
      return await super.writeSmallFile(rel, parts);
    } catch (err) {
      this.failed = true;
      throw err;
    } finally {
      this.running--;
    }
  }

  override async remove(rel: string): Promise<void> {
    if (rel.includes('/.partial-') && this.running > 0) this.removedWhileWriting = true;
    return super.remove(rel);
  }
}

test('regression: a failed backup removed its partial folder while small writes were still running, which could leave the folder behind', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-paths-'));
  fs.chmodSync(dir, 0o700);
  destDirs.push(dir);
  const dest = new SlowAfterFailure(dir);
  await dest.open();
  dest.failSmallWriteAt = 40;
  await assert.rejects(backup(dest, 'incremental'), /no space left on the destination/);
  assert.equal(dest.removedWhileWriting, false, 'the partial folder is removed only after the writes in flight settled');
  assert.equal(dest.running, 0);
  const left = fs.readdirSync(path.join(dir, acct.username));
  assert.deepEqual(left.filter((n) => n.startsWith('.partial-')), [], 'the partial folder is removed');
});

test('a small file is never written through a symlink planted at its name', async () => {
  const dest = await newDestination();
  const root = destDirs.at(-1)!;
  await dest.mkdir('x');
  const victim = path.join(homeRoot, 'victim');
  fs.writeFileSync(victim, 'untouched');
  fs.symlinkSync(victim, path.join(root, 'x/blob'));
  await assert.rejects(dest.writeSmallFile('x/blob', [Buffer.from('overwritten')]), /symbolic link/);
  assert.equal(fs.readFileSync(victim, 'utf8'), 'untouched');
  const hash = await dest.writeSmallFile('x/other', [Buffer.from('ab'), Buffer.from('c')]);
  assert.equal(hash.toString('hex'), sha256(Buffer.from('abc')));
  assert.equal(fs.readFileSync(path.join(root, 'x/other'), 'utf8'), 'abc');
});

test('compressed: a whole restore reads the archive once from start to end, past a file larger than the look-ahead', async () => {
  const dest = await newDestination();
  const m = await backup(dest, 'compressed');
  dest.reads.clear();
  const out = await restoreSnapshot({
    account, destination: dest, snapshotId: m.id, paths: [], files: true, databases: [], intoFolder: true, mysql: noMysql, databaseOwnership: noOwnership,
  });
  const data = `${layout.snapshotDir(acct.username, m.id)}/${layout.data('compressed')}`;
  // Before: every file after the large one was read by a ranged read of its own (200 reads).
  assert.ok((dest.reads.get(data) ?? 0) <= 2, `reads of the archive: ${dest.reads.get(data)}`);
  const folder = path.join(acct.home, out.folder!);
  for (const rel of ['a/big.bin', 'b/f000.txt', 'b/f199.txt', 'b/large.bin', 'b/empty']) {
    assert.ok(fs.readFileSync(path.join(folder, rel)).equals(fs.readFileSync(path.join(acct.home, rel))), rel);
  }
  fs.rmSync(folder, { recursive: true, force: true });
});

test('compressed: a restore of files behind and far ahead of each other still gets each one exactly', async () => {
  const dest = await newDestination();
  const m = await backup(dest, 'compressed');
  const out = await restoreSnapshot({
    account, destination: dest, snapshotId: m.id, paths: ['b/f150.txt', 'a/big.bin', 'b/f003.txt'], files: true, databases: [], intoFolder: true,
    mysql: noMysql, databaseOwnership: noOwnership,
  });
  const folder = path.join(acct.home, out.folder!);
  for (const rel of ['a/big.bin', 'b/f003.txt', 'b/f150.txt']) {
    assert.ok(fs.readFileSync(path.join(folder, rel)).equals(fs.readFileSync(path.join(acct.home, rel))), rel);
  }
  assert.equal(fs.existsSync(path.join(folder, 'b/f004.txt')), false);
  fs.rmSync(folder, { recursive: true, force: true });
});

/** A Local destination read as a remote one is (no synchronous reads), counting the reads open at once. */
class RemoteLikeDestination extends WatchedDestination {
  open_ = 0;
  mostOpen = 0;
  /** Reads made while root's glibc kept freed memory for reuse (holdLargeBufferReuse), and the others. */
  readsHeld = 0;
  readsNotHeld = 0;
  override createReadStream(rel: string, range?: { start: number; end?: number }): Readable {
    if (largeBufferReuseHeld()) this.readsHeld++; else this.readsNotHeld++;
    const s = super.createReadStream(rel, range);
    this.mostOpen = Math.max(this.mostOpen, ++this.open_);
    s.once('close', () => { this.open_--; });
    return s;
  }
}

test('regression: a restore from a remote destination read its small files one after the other (a few round trips each, the connection idle)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-paths-'));
  fs.chmodSync(dir, 0o700);
  destDirs.push(dir);
  const dest = new RemoteLikeDestination(dir);
  Object.defineProperty(dest, 'openForReads', { value: undefined });
  await dest.open();
  const m = await backup(dest, 'incremental');
  const out = await restoreSnapshot({
    account, destination: dest, snapshotId: m.id, paths: [], files: true, databases: [], intoFolder: true, mysql: noMysql, databaseOwnership: noOwnership,
  });
  assert.ok(dest.mostOpen > 4, `reads open at once: ${dest.mostOpen}`);
  const contentReads = dest.readsHeld;
  assert.ok(contentReads > 200, `the content was read while freed memory was kept for reuse: ${contentReads} reads of ${contentReads + dest.readsNotHeld}`);
  assert.equal(largeBufferReuseHeld(), false, 'and the hold is released once the restore is done');
  const folder = path.join(acct.home, out.folder!);
  for (const rel of ['a/big.bin', 'b/f000.txt', 'b/f077.txt', 'b/f199.txt', 'b/large.bin', 'b/empty']) {
    assert.ok(fs.readFileSync(path.join(folder, rel)).equals(fs.readFileSync(path.join(acct.home, rel))), rel);
  }
  fs.rmSync(folder, { recursive: true, force: true });

  // A damaged small file among those read ahead: the restore stops at it, naming it; it is not left behind.
  const snap = layout.snapshotDir(acct.username, m.id);
  const damaged = (await readIndex(dest, snap)).find((e) => e.path === 'b/f100.txt')!;
  const blob = path.join(dir, snap, layout.blob(damaged.dataRef));
  const bytes = fs.readFileSync(blob);
  bytes.writeUInt8(bytes[0]! ^ 1, 0);
  fs.writeFileSync(blob, bytes);
  const before = new Set(fs.readdirSync(acct.home));
  await assert.rejects(restoreSnapshot({
    account, destination: dest, snapshotId: m.id, paths: ['b'], files: true, databases: [], intoFolder: true, mysql: noMysql, databaseOwnership: noOwnership,
  }), /b\/f100\.txt.*does not match its hash/);
  const made = fs.readdirSync(acct.home).filter((n) => !before.has(n));
  assert.equal(made.length, 1);
  assert.ok(fs.readFileSync(path.join(acct.home, made[0]!, 'b/f099.txt')).equals(fs.readFileSync(path.join(acct.home, 'b/f099.txt'))), 'the files before it are restored');
  assert.equal(fs.existsSync(path.join(acct.home, made[0]!, 'b/f100.txt')), false);
  fs.rmSync(path.join(acct.home, made[0]!), { recursive: true, force: true });
});

test('hard links made in batches: a link that fails fails alone, the others in its batch are made', async () => {
  const dest = await newDestination();
  const root = destDirs.at(-1)!;
  await dest.writeFile('a/x', 'content');
  await dest.writeFile('b/taken', 'already here');
  const results = await Promise.allSettled([
    dest.link('a/x', 'b/one'), dest.link('a/x', 'b/taken'), dest.link('a/missing', 'b/two'), dest.link('a/x', 'b/three'),
  ]);
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'rejected', 'fulfilled']);
  assert.equal(fs.readFileSync(path.join(root, 'b/taken'), 'utf8'), 'already here');
  assert.equal(fs.statSync(path.join(root, 'a/x')).nlink, 3);
  assert.equal(fs.existsSync(path.join(root, 'b/two')), false);
});

test('compressed: the data hash in the manifest is the SHA-256 of the stored file (hashed off the event loop); archive: its tar digest (integrity version 2)', async () => {
  for (const structure of ['archive', 'compressed'] as const) {
    const dest = await newDestination();
    const m = await backup(dest, structure);
    const stored = fs.readFileSync(path.join(destDirs.at(-1)!, layout.snapshotDir(acct.username, m.id), layout.data(structure)));
    assert.equal(m.integrity?.version, 2);
    if (structure === 'compressed') assert.equal(m.integrity?.data, sha256(stored));
    else assert.deepEqual([m.integrity?.data, m.integrity?.tar?.length], [null, 64]);
    assert.deepEqual((await verifySnapshotData(dest, acct.username, m.id)).damaged, [], structure);
  }
});

test('a stream hash given more than it may hold waiting asks to wait, and hashes every byte in order', async () => {
  const { streamHash } = await import('../server/native/hash-off-loop.js');
  const h = streamHash();
  const ref = crypto.createHash('sha256');
  let waits = 0;
  for (let i = 0; i < 24; i++) {
    const chunk = crypto.randomBytes(1 << 20);
    ref.update(chunk);
    const wait = h.update(chunk);
    if (wait) { waits++; await wait; }
  }
  assert.equal((await h.digest()).toString('hex'), ref.digest('hex'));
  assert.ok(waits > 0, 'more than 8 MiB waiting made the caller wait');
});
