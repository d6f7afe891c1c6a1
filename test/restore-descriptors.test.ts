// A restore into a new folder from a local incremental, archive or compressed snapshot: root
// hands the account's writer read-only descriptors of the stored files (native/pass-fds.c,
// restore-descriptors.ts) and the writer reads (or inflates by gzip member: member-inflater.ts),
// checks and writes the content itself (restoreFileFrom, NewFiles). Only regular files are ever handed over, a damaged or short copy never
// gets a name, and the restore names the damage as before.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { asAccount, createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { backupEachStructure, cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';
import { recvWithFds, sendWithFds, socketPair } from '../server/native/pass-fds.js';
import { MAX_FILES_FROM, restoreFileFromOffLoop, restoreFilesFromOffLoop, restoreNewFileOffLoop, restoreNewFilesOffLoop, type FileFrom, type NewFile } from '../server/native/restore-file.js';
import zlib from 'node:zlib';
import { layout } from '../server/engine/snapshot-layout.js';
import { tarHeaders, tarHeadersLength } from '../server/engine/format/tar.js';
import { makeEntry, parseEntryStream, type Entry } from '../server/engine/format/entry.js';
import { NewFiles, type NewFilesHooks } from '../server/engine/worker/new-files.js';
import { removeRestoreLeftovers } from '../server/engine/worker/restore-writer.js';
import { diffTrees, snapshotTree } from './support/tree.js';
import { toDisplay } from '../server/util/byte-path.js';

async function readIndexFile(file: string): Promise<Entry[]> {
  const out: Entry[] = [];
  const raw = zlib.gunzipSync(fs.readFileSync(file));
  for await (const ev of parseEntryStream((async function* () { yield raw; })())) if (ev.type === 'entry') out.push(ev.entry);
  return out;
}

const sha = (b: Buffer): Buffer => crypto.createHash('sha256').update(b).digest();

/** NewFiles hooks writing under `dir`, content checked, no owner change; a warning or a taken name fails the test unless `own` says otherwise. */
function hooksInto(dir: string, own: Partial<NewFilesHooks> = {}): NewFilesHooks {
  return {
    abs: (rel) => Buffer.from(path.join(dir, rel)),
    owner: () => null,
    done: () => undefined,
    warn: (rel, m) => assert.fail(`${toDisplay(rel)}: ${m}`),
    ownerWarning: () => undefined,
    taken: () => assert.fail('no name is taken here'),
    takenFrom: () => assert.fail('no name is taken here'),
    checkHash: true,
    ...own,
  };
}
type JobError = NodeJS.ErrnoException & { stage?: string; damage?: string };

test('pass-fds: descriptors arrive with the first bytes of their send; a directory is refused and closed', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-pass-fds-'));
  const [a, b] = socketPair();
  try {
    fs.writeFileSync(path.join(dir, 'f'), 'content');
    const fd = fs.openSync(path.join(dir, 'f'), 'r');
    await sendWithFds(a, Buffer.from('records'), [fd], true);
    assert.throws(() => fs.fstatSync(fd), { code: 'EBADF' }, 'closed by the send');
    const buf = Buffer.alloc(64);
    const [n, fds] = await recvWithFds(b, buf, 0, 64);
    assert.equal(buf.toString('utf8', 0, n), 'records');
    assert.equal(fds.length, 1);
    assert.equal(fs.readFileSync(fds[0]!, 'utf8'), 'content');
    fs.closeSync(fds[0]!);

    const dirFd = fs.openSync(dir, 'r');
    await sendWithFds(a, Buffer.from('x'), [dirFd], true);
    await assert.rejects(recvWithFds(b, buf, 0, 64), { code: 'EBADF' });
  } finally {
    fs.closeSync(a);
    fs.closeSync(b);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('restoreFileFrom: exact bytes, mode and ns time; a damaged or short copy, small or large, is never left; a taken name keeps the descriptor open', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-file-from-'));
  try {
    const small = crypto.randomBytes(70000);
    const large = crypto.randomBytes((4 << 20) + 5000);
    const stored = Buffer.concat([Buffer.from('header'), small, large]);
    fs.writeFileSync(path.join(dir, 'stored'), stored);
    const fd = fs.openSync(path.join(dir, 'stored'), 'r');
    const to = (n: string): Buffer => Buffer.from(path.join(dir, n));
    const fail = (p: Promise<unknown>): Promise<JobError> => p.then(() => { throw new Error('resolved'); }, (e: JobError) => e);

    assert.equal(await restoreFileFromOffLoop(to('small'), fd, 6, small.length, sha(small), 0o640, -1, -1, 1600000000, 123456789, false), 0);
    assert.ok(fs.readFileSync(path.join(dir, 'small')).equals(small));
    const st = fs.statSync(path.join(dir, 'small'), { bigint: true });
    assert.equal(Number(st.mode & 0o7777n), 0o640);
    assert.equal(st.mtimeNs, 1600000000123456789n);
    assert.equal(await restoreFileFromOffLoop(to('large'), fd, 6 + small.length, large.length, sha(large), 0o600, -1, -1, 1, 2, false), 0);
    assert.ok(fs.readFileSync(path.join(dir, 'large')).equals(large));

    const wrong = sha(Buffer.from('something else'));
    let e = await fail(restoreFileFromOffLoop(to('bad-small'), fd, 6, small.length, wrong, 0o600, -1, -1, 1, 2, false)!);
    assert.deepEqual([e.stage, e.damage], ['damaged', 'hash']);
    e = await fail(restoreFileFromOffLoop(to('bad-large'), fd, 6 + small.length, large.length, wrong, 0o600, -1, -1, 1, 2, false)!);
    assert.deepEqual([e.stage, e.damage], ['damaged', 'hash']);
    e = await fail(restoreFileFromOffLoop(to('short'), fd, stored.length - 10, 20, null, 0o600, -1, -1, 1, 2, false)!);
    assert.deepEqual([e.stage, e.damage], ['damaged', 'short']);
    e = await fail(restoreFileFromOffLoop(to('short-large'), fd, 6 + small.length, large.length + 1, null, 0o600, -1, -1, 1, 2, false)!);
    assert.deepEqual([e.stage, e.damage], ['damaged', 'short']);
    for (const n of ['bad-small', 'bad-large', 'short', 'short-large']) assert.equal(fs.existsSync(path.join(dir, n)), false, n);

    // A link planted at the name: not followed, and the descriptor stays the caller's.
    fs.writeFileSync(path.join(dir, 'outside'), 'keep');
    fs.symlinkSync(path.join(dir, 'outside'), path.join(dir, 'planted'));
    const own = fs.openSync(path.join(dir, 'stored'), 'r');
    e = await fail(restoreFileFromOffLoop(to('planted'), own, 6, small.length, sha(small), 0o600, -1, -1, 1, 2, true)!);
    assert.equal(e.stage, 'open');
    assert.equal(fs.fstatSync(own).size, stored.length, 'still open');
    assert.equal(fs.readFileSync(path.join(dir, 'outside'), 'utf8'), 'keep');
    assert.equal(await restoreFileFromOffLoop(to('closed'), own, 6, small.length, sha(small), 0o600, -1, -1, 1, 2, true), 0);
    assert.throws(() => fs.fstatSync(own), { code: 'EBADF' }, 'closed by the job');
    fs.closeSync(fd);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('restoreFileFrom of 64 KiB to 4 MiB (read into the thread\'s buffer, no mapping): exact at page-aligned and unaligned offsets and up to the stored file\'s last byte; a stored file shorter than the record, or different, leaves no file', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-file-medium-'));
  try {
    const sizes = [64 << 10, (64 << 10) + 1, 300_001, 4 << 20, (1 << 20) + 4095];
    const contents = sizes.map((n) => crypto.randomBytes(n));
    // The first at offset 0, the second page-aligned, the rest at odd offsets; the last ends the file.
    const pad = (n: number): Buffer => Buffer.alloc(n, 0x5a);
    const parts = [contents[0]!, pad(4096 - ((64 << 10) % 4096 || 4096)), contents[1]!, pad(7), contents[2]!, pad(513), contents[3]!, pad(1), contents[4]!];
    const stored = Buffer.concat(parts);
    fs.writeFileSync(path.join(dir, 'stored'), stored);
    const offsets = contents.map((c) => stored.indexOf(c.subarray(0, 64)));
    assert.equal(offsets[1]! % 4096, 0);
    assert.equal(offsets[4]! + sizes[4]!, stored.length);
    const fd = fs.openSync(path.join(dir, 'stored'), 'r');
    const to = (n: string): Buffer => Buffer.from(path.join(dir, n));
    const fail = (p: Promise<unknown>): Promise<JobError> => p.then(() => { throw new Error('resolved'); }, (e: JobError) => e);
    for (const [i, c] of contents.entries()) {
      assert.equal(await restoreFileFromOffLoop(to(`f${i}`), fd, offsets[i]!, c.length, sha(c), 0o604, -1, -1, 1700000000, 999999999, false), 0);
      assert.ok(fs.readFileSync(path.join(dir, `f${i}`)).equals(c), `f${i} exact`);
      const st = fs.statSync(path.join(dir, `f${i}`), { bigint: true });
      assert.equal(Number(st.mode & 0o7777n), 0o604);
      assert.equal(st.mtimeNs, 1700000000999999999n);
    }
    // One byte past the end of the stored file: short, whatever the hash.
    let e = await fail(restoreFileFromOffLoop(to('short'), fd, offsets[4]!, sizes[4]! + 1, sha(contents[4]!), 0o600, -1, -1, 1, 2, false)!);
    assert.deepEqual([e.stage, e.damage], ['damaged', 'short']);
    e = await fail(restoreFileFromOffLoop(to('short-unhashed'), fd, stored.length - (100 << 10), 200 << 10, null, 0o600, -1, -1, 1, 2, false)!);
    assert.deepEqual([e.stage, e.damage], ['damaged', 'short']);
    // The bytes one further on: they are not the content the hash names.
    e = await fail(restoreFileFromOffLoop(to('shifted'), fd, offsets[2]! + 1, sizes[2]!, sha(contents[2]!), 0o600, -1, -1, 1, 2, false)!);
    assert.deepEqual([e.stage, e.damage], ['damaged', 'hash']);
    for (const n of ['short', 'short-unhashed', 'shifted']) assert.equal(fs.existsSync(path.join(dir, n)), false, n);
    fs.closeSync(fd);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('restoreFilesFrom: a pool thread reuses its buffer and hash across a batch; no bytes or hash state of one file reach the next', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-files-reuse-'));
  try {
    // Sizes that grow and shrink the thread's buffer (the streamed path above 4 MiB uses it too),
    // a damaged file and a short one (whose hash was fed part of its content) between good ones.
    const sizes = [3 << 20, 100, 200_000, 7, (5 << 20) + 11, 1, 70_000, (4 << 20), 0, 4096];
    const contents = sizes.map((n) => crypto.randomBytes(n));
    const stored = Buffer.concat(contents);
    fs.writeFileSync(path.join(dir, 'stored'), stored);
    const fd = fs.openSync(path.join(dir, 'stored'), 'r');
    const starts = contents.map((_, i) => contents.slice(0, i).reduce((n, c) => n + c.length, 0));
    const file = (name: string, i: number, hash: Buffer | null, size = sizes[i]!): FileFrom =>
      ({ path: Buffer.from(path.join(dir, name)), fd, offset: starts[i]!, size, hash, mode: 0o600, uid: -1, gid: -1, sec: 1600000000, nsec: 5, closeFd: false });
    const batch: FileFrom[] = [];
    contents.forEach((c, i) => {
      batch.push(file(`f${i}`, i, sha(c)));
      // After each: one damaged (another's hash) and, past the large one, one short (the stored file ends first).
      if (i === 1) batch.push(file('damaged', 2, sha(contents[0]!)));
      if (i === 4) batch.push({ ...file('short', 9, sha(contents[9]!), (5 << 20)), offset: stored.length - 100 });
    });
    const results = await restoreFilesFromOffLoop(batch)!;
    batch.forEach((f, i) => {
      const name = path.basename(f.path.toString());
      if (name === 'damaged') assert.deepEqual([(results[i] as JobError).stage, (results[i] as JobError).damage], ['damaged', 'hash']);
      else if (name === 'short') assert.deepEqual([(results[i] as JobError).stage, (results[i] as JobError).damage], ['damaged', 'short']);
      else assert.equal(results[i], 0, name);
    });
    contents.forEach((c, i) => assert.ok(fs.readFileSync(path.join(dir, `f${i}`)).equals(c), `f${i} exact`));
    for (const n of ['damaged', 'short']) assert.equal(fs.existsSync(path.join(dir, n)), false, n);
    fs.closeSync(fd);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('restoreFilesFrom: a batch writes each file exactly; a damaged, short or taken one fails alone, with restoreFileFrom\'s stage, and never stops the others', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-files-from-'));
  try {
    const a = crypto.randomBytes(5000);
    const b = crypto.randomBytes((4 << 20) + 3);
    const stored = Buffer.concat([a, b]);
    fs.writeFileSync(path.join(dir, 'stored'), stored);
    fs.writeFileSync(path.join(dir, 'outside'), 'keep');
    fs.symlinkSync(path.join(dir, 'outside'), path.join(dir, 'planted'));
    const shared = fs.openSync(path.join(dir, 'stored'), 'r');
    const owned = [0, 1, 2].map(() => fs.openSync(path.join(dir, 'stored'), 'r'));
    const file = (name: string, fd: number, offset: number, size: number, hash: Buffer | null, closeFd = false): FileFrom =>
      ({ path: Buffer.from(path.join(dir, name)), fd, offset, size, hash, mode: 0o640, uid: -1, gid: -1, sec: 1600000000, nsec: 987654321, closeFd });
    const results = await restoreFilesFromOffLoop([
      file('a', shared, 0, a.length, sha(a)),
      file('bad', shared, 0, a.length, sha(b)),
      file('b', owned[0]!, a.length, b.length, sha(b), true),
      file('planted', owned[1]!, 0, a.length, sha(a), true),
      file('short', shared, stored.length - 3, 10, null),
      file('empty', owned[2]!, 0, 0, sha(Buffer.alloc(0)), true),
    ])!;
    assert.equal(results.length, 6);
    assert.deepEqual([results[0], results[2], results[5]], [0, 0, 0]);
    const err = (r: unknown): JobError => r as JobError;
    assert.deepEqual([err(results[1]).stage, err(results[1]).damage], ['damaged', 'hash']);
    assert.deepEqual([err(results[3]).stage, err(results[3]).code], ['open', 'EEXIST'], 'a link at the name is not followed');
    assert.deepEqual([err(results[4]).stage, err(results[4]).damage], ['damaged', 'short']);
    assert.ok(fs.readFileSync(path.join(dir, 'a')).equals(a));
    assert.ok(fs.readFileSync(path.join(dir, 'b')).equals(b));
    assert.equal(fs.readFileSync(path.join(dir, 'empty')).length, 0);
    for (const n of ['a', 'b', 'empty']) {
      const st = fs.statSync(path.join(dir, n), { bigint: true });
      assert.equal(Number(st.mode & 0o7777n), 0o640, n);
      assert.equal(st.mtimeNs, 1600000000987654321n, n);
    }
    for (const n of ['bad', 'short']) assert.equal(fs.existsSync(path.join(dir, n)), false, n);
    assert.equal(fs.readFileSync(path.join(dir, 'outside'), 'utf8'), 'keep');
    // Closed by the job when written; left to the caller after stage "open"; the shared one never closed.
    assert.throws(() => fs.fstatSync(owned[0]!), { code: 'EBADF' });
    assert.throws(() => fs.fstatSync(owned[2]!), { code: 'EBADF' });
    assert.equal(fs.fstatSync(owned[1]!).size, stored.length);
    assert.equal(fs.fstatSync(shared).size, stored.length);
    fs.closeSync(owned[1]!);
    fs.closeSync(shared);

    // Refused outright: no batch, a batch too large, numbers out of range, a path with NUL.
    const one = file('x', 0, 0, 1, null);
    assert.throws(() => restoreFilesFromOffLoop([]), TypeError);
    assert.throws(() => restoreFilesFromOffLoop(Array.from({ length: MAX_FILES_FROM + 1 }, () => one)), TypeError);
    assert.throws(() => restoreFilesFromOffLoop([{ ...one, mode: 0o17777 }]), TypeError);
    assert.throws(() => restoreFilesFromOffLoop([{ ...one, offset: 1.5 }]), TypeError);
    assert.throws(() => restoreFilesFromOffLoop([{ ...one, nsec: 1e9 }]), TypeError);
    assert.throws(() => restoreFilesFromOffLoop([{ ...one, path: Buffer.from('a\0b') }]), TypeError);
    assert.equal(fs.existsSync(path.join(dir, 'x')), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('NewFiles.submitFrom in batches: many files queued and written exactly; a path the kernel cannot take fails alone as a warning', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-submit-batches-'));
  try {
    const count = 300;
    const contents = Array.from({ length: count }, (_, i) => crypto.randomBytes(1 + ((i * 7919) % 40000)));
    fs.writeFileSync(path.join(dir, 'stored'), Buffer.concat(contents));
    fs.mkdirSync(path.join(dir, 'out'));
    const long = `${'n'.repeat(250)}/`.repeat(17) + 'f';
    const done: string[] = [];
    const warned: string[] = [];
    const files = NewFiles.create(hooksInto(path.join(dir, 'out'), {
      done: (e) => done.push(e.path),
      warn: (rel, m) => warned.push(`${rel.slice(0, 4)}: ${m}`),
      checkHash: false,
    }))!;
    let offset = 0;
    for (let i = 0; i < count; i++) {
      const fd = fs.openSync(path.join(dir, 'stored'), 'r');
      const name = i === 150 ? long : `f${i}`;
      await files.submitFrom(makeEntry({ kind: 'f', path: name, size: contents[i]!.length, mode: 0o600, mtimeSec: i, mtimeNsec: i, hash: sha(contents[i]!) }), fd, offset, true);
      offset += contents[i]!.length;
    }
    await files.drain();
    files.throwIfFailed();
    assert.equal(done.length, count - 1);
    assert.equal(warned.length, 1);
    assert.match(warned[0]!, /^nnnn: not restored: /);
    for (let i = 0; i < count; i++) {
      if (i === 150) continue;
      const p = path.join(dir, 'out', `f${i}`);
      assert.ok(fs.readFileSync(p).equals(contents[i]!), `f${i}`);
      assert.equal(fs.statSync(p, { bigint: true }).mtimeNs, BigInt(i) * 1000000000n + BigInt(i));
    }
    // Every descriptor was closed: only the test's own are open beyond the usual few.
    const open = fs.readdirSync('/proc/self/fd').map((n) => { try { return fs.readlinkSync(`/proc/self/fd/${n}`); } catch { return ''; } });
    assert.equal(open.filter((l) => l === path.join(dir, 'stored')).length, 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('leftovers of killed restores: removed beside a restore into a new folder as before it, never inside the new folder, never through a link', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-leftovers-'));
  try {
    const home = path.join(dir, 'home');
    const outside = path.join(dir, 'outside');
    const make = (): void => {
      fs.rmSync(home, { recursive: true, force: true });
      fs.mkdirSync(path.join(home, 'a/b'), { recursive: true });
      fs.mkdirSync(path.join(home, 'tidemark-restore-new/sub'), { recursive: true });
      fs.mkdirSync(outside, { recursive: true });
      for (const p of ['.tidemark-0123456789ab', 'a/b/.tidemark-fifo-abcdef012345', 'tidemark-restore-new/sub/.tidemark-0123456789ab',
        'a/.tidemark-notes', 'a/.tidemark-0123456789abc', '../outside/.tidemark-0123456789ab']) fs.writeFileSync(path.join(home, p), 'x');
      fs.symlinkSync(outside, path.join(home, 'link'));
    };
    const left = (): string[] => [...snapshotTree(home).keys()].filter((k) => k.includes('.tidemark-')).sort();
    const kept = ['a/.tidemark-0123456789abc', 'a/.tidemark-notes'];
    const uid = process.getuid!();
    make();
    assert.equal(await removeRestoreLeftovers(Buffer.from(home), uid, Buffer.from(path.join(home, 'tidemark-restore-new'))), 2);
    assert.deepEqual(left(), [...kept, 'tidemark-restore-new/sub/.tidemark-0123456789ab'].sort(), 'the new folder is not gone into');
    assert.ok(fs.existsSync(path.join(outside, '.tidemark-0123456789ab')), 'a link is not followed');
    make();
    assert.equal(await removeRestoreLeftovers(Buffer.from(home), uid), 3);
    assert.deepEqual(left(), kept);
    assert.ok(fs.existsSync(path.join(outside, '.tidemark-0123456789ab')));
    // Another owner's file under the name stays (both walks).
    make();
    assert.equal(await removeRestoreLeftovers(Buffer.from(home), uid + 1, Buffer.from(path.join(home, 'none'))), 0);
    assert.equal(await removeRestoreLeftovers(Buffer.from(home), uid + 1), 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('restoreNewFiles: a batch of gathered files, each checked then written exactly (bytes, mode, ns time); a damaged or taken one fails alone, with restoreNewFile\'s stage', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-new-files-'));
  try {
    const a = crypto.randomBytes(5000);
    const b = crypto.randomBytes(200000);
    fs.writeFileSync(path.join(dir, 'outside'), 'keep');
    fs.symlinkSync(path.join(dir, 'outside'), path.join(dir, 'planted'));
    fs.writeFileSync(path.join(dir, 'taken'), 'already here');
    const file = (name: string, parts: Buffer[], hash: Buffer | null): NewFile =>
      ({ path: Buffer.from(path.join(dir, name)), parts, hash, mode: 0o640, uid: -1, gid: -1, sec: 1600000000, nsec: 987654321 });
    const results = await restoreNewFilesOffLoop([
      file('a', [a], sha(a)),
      file('bad', [a.subarray(0, 100), a.subarray(100)], sha(b)),
      file('b', [b.subarray(0, 65536), b.subarray(65536, 65536), b.subarray(65536)], sha(b)),
      file('planted', [a], sha(a)),
      file('taken', [a], null),
      file('empty', [], sha(Buffer.alloc(0))),
      file('unchecked', [b], null),
    ])!;
    assert.equal(results.length, 7);
    assert.deepEqual([results[0], results[2], results[5], results[6]], [0, 0, 0, 0]);
    const err = (r: unknown): JobError => r as JobError;
    assert.deepEqual([err(results[1]).stage, err(results[1]).damage], ['damaged', 'hash']);
    assert.equal(err(results[3]).stage, 'open', 'a link at the name is not followed');
    assert.match(String(err(results[3]).code), /^(EEXIST|ELOOP)$/);
    assert.deepEqual([err(results[4]).stage, err(results[4]).code], ['open', 'EEXIST']);
    assert.ok(fs.readFileSync(path.join(dir, 'a')).equals(a));
    assert.ok(fs.readFileSync(path.join(dir, 'b')).equals(b));
    assert.ok(fs.readFileSync(path.join(dir, 'unchecked')).equals(b));
    assert.equal(fs.readFileSync(path.join(dir, 'empty')).length, 0);
    for (const n of ['a', 'b', 'empty', 'unchecked']) {
      const st = fs.statSync(path.join(dir, n), { bigint: true });
      assert.equal(Number(st.mode & 0o7777n), 0o640, n);
      assert.equal(st.mtimeNs, 1600000000987654321n, n);
    }
    assert.equal(fs.existsSync(path.join(dir, 'bad')), false, 'damaged content never gets a name');
    assert.equal(fs.readFileSync(path.join(dir, 'outside'), 'utf8'), 'keep');
    assert.equal(fs.readFileSync(path.join(dir, 'taken'), 'utf8'), 'already here');

    // Refused outright: no batch, a batch too large, numbers out of range, a path with NUL, a part that is not a Buffer.
    const one = file('x', [Buffer.from('x')], null);
    assert.throws(() => restoreNewFilesOffLoop([]), TypeError);
    assert.throws(() => restoreNewFilesOffLoop(Array.from({ length: MAX_FILES_FROM + 1 }, () => one)), TypeError);
    assert.throws(() => restoreNewFilesOffLoop([{ ...one, mode: 0o17777 }]), TypeError);
    assert.throws(() => restoreNewFilesOffLoop([{ ...one, nsec: 1e9 }]), TypeError);
    assert.throws(() => restoreNewFilesOffLoop([{ ...one, uid: -2 }]), TypeError);
    assert.throws(() => restoreNewFilesOffLoop([{ ...one, path: Buffer.from('a\0b') }]), TypeError);
    assert.throws(() => restoreNewFilesOffLoop([{ ...one, parts: ['x' as unknown as Buffer] }]), TypeError);
    assert.equal(fs.existsSync(path.join(dir, 'x')), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('NewFiles.submit in batches: many gathered files written exactly and checked; a damaged one stops the restore alone, a taken name goes the other way, an impossible path only warns', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-submit-gathered-'));
  try {
    const count = 300;
    const contents = Array.from({ length: count }, (_, i) => crypto.randomBytes(1 + ((i * 7919) % 40000)));
    fs.mkdirSync(path.join(dir, 'out'));
    fs.writeFileSync(path.join(dir, 'outside'), 'keep');
    fs.symlinkSync(path.join(dir, 'outside'), path.join(dir, 'out', 'f200'));
    const long = `${'n'.repeat(250)}/`.repeat(17) + 'f';
    const done: string[] = [];
    const warned: string[] = [];
    const taken: string[] = [];
    const files = NewFiles.create(hooksInto(path.join(dir, 'out'), {
      done: (e) => done.push(e.path),
      warn: (rel, m) => warned.push(`${rel.slice(0, 4)}: ${m}`),
      taken: (e, parts) => { taken.push(e.path); assert.ok(Buffer.concat(parts).equals(contents[200]!)); },
    }))!;
    for (let i = 0; i < count; i++) {
      const name = i === 150 ? long : `f${i}`;
      const c = contents[i]!;
      const e = makeEntry({ kind: 'f', path: name, size: c.length, mode: 0o600 | (i % 2 ? 0o044 : 0), mtimeSec: 1600000000 + i, mtimeNsec: i * 1001, hash: sha(i === count - 1 ? Buffer.from('other') : c) });
      assert.ok(files.takes(e, true));
      // In pieces, as inflated members give them.
      for (let at = 0; at < c.length; at += 16384) files.add(c.subarray(at, at + 16384));
      await files.submit();
    }
    await files.drain();
    // The last file (nothing is submitted after it: the restore would stop at the next one).
    assert.throws(() => files.throwIfFailed(), /"f299" in the snapshot does not match its hash/);
    assert.equal(fs.existsSync(path.join(dir, 'out', 'f299')), false, 'damaged content never gets a name');
    assert.deepEqual(taken, ['f200'], 'a link at the name is written over the other way, never followed');
    assert.equal(fs.readFileSync(path.join(dir, 'outside'), 'utf8'), 'keep');
    assert.equal(warned.length, 1);
    assert.match(warned[0]!, /^nnnn: not restored: /);
    assert.equal(done.length, count - 3);
    for (let i = 0; i < count; i++) {
      if (i === 150 || i === count - 1 || i === 200) continue;
      const p = path.join(dir, 'out', `f${i}`);
      assert.ok(fs.readFileSync(p).equals(contents[i]!), `f${i}`);
      const st = fs.statSync(p, { bigint: true });
      assert.equal(Number(st.mode & 0o7777n), 0o600 | (i % 2 ? 0o044 : 0), `f${i}`);
      assert.equal(st.mtimeNs, BigInt(1600000000 + i) * 1000000000n + BigInt(i * 1001), `f${i}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('restoreNewFile with a hash: the parts are checked in the job; different content creates nothing and says so; NewFiles stops the restore on it', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-new-file-hash-'));
  try {
    const parts = [Buffer.from('abc'), Buffer.from('def')];
    const to = (n: string): Buffer => Buffer.from(path.join(dir, n));
    assert.equal(await restoreNewFileOffLoop(to('good'), parts, 0o640, -1, -1, 1600000000, 5, sha(Buffer.from('abcdef'))), 0);
    assert.equal(fs.readFileSync(path.join(dir, 'good'), 'utf8'), 'abcdef');
    const e = await restoreNewFileOffLoop(to('bad'), parts, 0o640, -1, -1, 1, 2, sha(Buffer.from('abcdeF')))!.then(() => null, (err: JobError) => err);
    assert.deepEqual([e?.stage, e?.damage], ['damaged', 'hash']);
    assert.equal(fs.existsSync(path.join(dir, 'bad')), false);

    const files = NewFiles.create(hooksInto(dir))!;
    const entry = (name: string, content: string): Entry => makeEntry({ kind: 'f', path: name, size: 6, mode: 0o644, hash: sha(Buffer.from(content)) });
    assert.ok(files.takes(entry('ok', 'abcdef'), true));
    for (const p of parts) files.add(p);
    await files.submit();
    assert.ok(files.takes(entry('damaged', 'zzzzzz'), true));
    for (const p of parts) files.add(p);
    await files.submit();
    await files.drain();
    assert.throws(() => files.throwIfFailed(), /"damaged" in the snapshot does not match its hash/);
    assert.equal(fs.readFileSync(path.join(dir, 'ok'), 'utf8'), 'abcdef');
    assert.equal(fs.existsSync(path.join(dir, 'damaged')), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('regression: a restore that stopped dropped the gathered files still queued for a batch, whole ones that came before the stop', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-new-files-abandon-'));
  try {
    const done: string[] = [];
    const files = NewFiles.create(hooksInto(dir, { done: (e) => { done.push(toDisplay(e.path)); } }))!;
    // Submitted without waiting for the pool: the first two go as batches at once, the rest wait in the queue.
    const names = Array.from({ length: 40 }, (_, i) => `f${String(i).padStart(2, '0')}`);
    for (const name of names) {
      const content = Buffer.from(`content of ${name}\n`);
      assert.ok(files.takes(makeEntry({ kind: 'f', path: name, size: content.length, mode: 0o644, hash: sha(content) }), true));
      files.add(content);
      await files.submit();
    }
    // The next file is only partly here when the stream breaks off.
    assert.ok(files.takes(makeEntry({ kind: 'f', path: 'partial', size: 100, mode: 0o644, hash: sha(Buffer.alloc(100)) }), true));
    files.add(Buffer.alloc(10));
    files.abandon();
    await files.drain();
    for (const name of names) assert.equal(fs.readFileSync(path.join(dir, name), 'utf8'), `content of ${name}\n`, name);
    assert.deepEqual([...done].sort(), names);
    assert.equal(fs.existsSync(path.join(dir, 'partial')), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

let homeRoot: string;
let account: TestAccount;
let dataDir: string;
let destDir: string;
const snapshots: Record<string, string> = {};
const LARGE = (4 << 20) + 777;

before(() => {
  homeRoot = makeHomeRoot();
  account = createAccount(homeRoot);
  asAccount(account, [
    'mkdir -p site/sub',
    'for i in $(seq 1 40); do head -c $(( i * 997 )) /dev/urandom > site/sub/f$i; done',
    'printf small-content > site/small.txt',
    `head -c ${LARGE} /dev/urandom > site/large.bin`,
    'printf after > site/zz-after.txt',
  ].join(' && '));
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  destDir = makeDestinationDir();
  Object.assign(snapshots, backupEachStructure(dataDir, destDir, account.username, ['incremental', 'archive', 'compressed']));
});

after(() => {
  if (account) removeAccount(account);
  for (const d of [homeRoot, dataDir, destDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

const snapDir = (st: string): string => path.join(destDir, st, account.username, snapshots[st]!);
async function blobOf(rel: string): Promise<string> {
  const entry = (await readIndexFile(path.join(snapDir('incremental'), layout.index))).find((e) => e.path === rel)!;
  return path.join(snapDir('incremental'), layout.blob(entry.dataRef));
}
const restore = (st: string): ReturnType<typeof cli> => cli(dataDir, ['restore', snapshots[st]!, '--destination', st, '--path', 'site', '--into-folder', '--wait']);
function folderOf(r: ReturnType<typeof cli>): string {
  const folder = /in the folder (tidemark-restore-[^ )]+) of the home/.exec(r.stderr + r.stdout)?.[1];
  assert.ok(folder, r.stderr + r.stdout);
  return path.join(account.home, folder);
}

/** Replaces the stored file `file` by what `make` puts at its name, runs `check`, puts it back. */
async function withReplaced(file: string, make: (p: string) => void, check: () => void): Promise<void> {
  const saved = `${file}.saved`;
  fs.renameSync(file, saved);
  try {
    make(file);
    check();
  } finally {
    fs.rmSync(file, { force: true, recursive: true });
    fs.renameSync(saved, file);
  }
}

for (const kind of ['a symlink to a file of the same content', 'a fifo', 'a directory']) {
  test(`regression: a blob replaced by ${kind} is refused and never opened; the files before it are restored`, async () => {
    const blob = await blobOf('site/small.txt');
    await withReplaced(blob, (p) => {
      if (kind === 'a fifo') execFileSync('mkfifo', [p]);
      else if (kind === 'a directory') fs.mkdirSync(p);
      else { fs.writeFileSync(`${p}.elsewhere`, 'small-content'); fs.symlinkSync(`${p}.elsewhere`, p); }
    }, () => {
      const r = restore('incremental');
      assert.notEqual(r.code, 0);
      assert.match(r.stderr + r.stdout, /not a regular file|symbolic link/);
      const folder = folderOf(r);
      assert.equal(fs.existsSync(path.join(folder, 'site/small.txt')), false);
      assert.ok(fs.readFileSync(path.join(folder, 'site/large.bin')).equals(fs.readFileSync(path.join(account.home, 'site/large.bin'))), 'restored before it');
      fs.rmSync(folder, { recursive: true, force: true });
    });
    fs.rmSync(`${blob}.elsewhere`, { force: true });
  });
}

test('a blob longer than its file restores the file exactly (what follows is not read)', async () => {
  const blob = await blobOf('site/small.txt');
  const want = fs.readFileSync(blob);
  fs.appendFileSync(blob, 'extra bytes appended');
  try {
    const r = ok(restore('incremental'));
    const folder = path.join(account.home, r.folder);
    assert.equal(fs.readFileSync(path.join(folder, 'site/small.txt'), 'utf8'), 'small-content');
    assert.ok(fs.readFileSync(path.join(folder, 'site/large.bin')).equals(fs.readFileSync(path.join(account.home, 'site/large.bin'))));
    fs.rmSync(folder, { recursive: true, force: true });
  } finally {
    fs.writeFileSync(blob, want);
  }
});

for (const which of ['site/small.txt', 'site/large.bin']) {
  test(`regression: a damaged or short blob of ${which} (written by the writer's job) leaves no file of it and names the damage`, async () => {
    const blob = await blobOf(which);
    const want = fs.readFileSync(blob);
    for (const damage of ['flipped', 'short']) {
      const bad = Buffer.from(want);
      if (damage === 'flipped') bad[bad.length >> 1] = bad[bad.length >> 1]! ^ 0xff;
      fs.writeFileSync(blob, damage === 'short' ? bad.subarray(0, bad.length - 3) : bad);
      try {
        const r = restore('incremental');
        assert.notEqual(r.code, 0);
        assert.match(r.stderr + r.stdout, damage === 'short' ? /short/ : /does not match its hash/);
        const folder = folderOf(r);
        assert.equal(fs.existsSync(path.join(folder, which)), false);
        assert.deepEqual(fs.readdirSync(path.join(folder, 'site')).filter((n) => n.startsWith('.tidemark-')), []);
        fs.rmSync(folder, { recursive: true, force: true });
      } finally {
        fs.writeFileSync(blob, want);
      }
    }
  });
}

test('regression: a damaged file in the archive (one tar descriptor for all files) leaves no file of it and names the damage', async () => {
  const tar = path.join(snapDir('archive'), layout.data('archive'));
  const entry = (await readIndexFile(path.join(snapDir('archive'), layout.index))).find((e) => e.path === 'site/small.txt')!;
  const at = entry.dataRef + tarHeaders(entry).length + 2;
  const want = fs.readFileSync(tar);
  const bad = Buffer.from(want);
  bad[at] = bad[at]! ^ 0xff;
  fs.writeFileSync(tar, bad);
  try {
    const r = restore('archive');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr + r.stdout, /small\.txt.*does not match its hash/);
    const folder = folderOf(r);
    assert.equal(fs.existsSync(path.join(folder, 'site/small.txt')), false);
    fs.rmSync(folder, { recursive: true, force: true });
  } finally {
    fs.writeFileSync(tar, want);
  }
  const r = ok(restore('archive'));
  const folder = path.join(account.home, r.folder);
  for (const rel of ['site/small.txt', 'site/large.bin', 'site/zz-after.txt', 'site/sub/f40']) {
    assert.ok(fs.readFileSync(path.join(folder, rel)).equals(fs.readFileSync(path.join(account.home, rel))), rel);
  }
  fs.rmSync(folder, { recursive: true, force: true });
});

test('NewFiles.submitFrom: a taken name goes to takenFrom with the descriptor still open; a damaged copy ends the restore', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-submit-from-'));
  try {
    const content = [Buffer.from('zero'), Buffer.from('one!'), Buffer.from('two.')];
    fs.writeFileSync(path.join(dir, 'stored'), Buffer.concat(content));
    fs.writeFileSync(path.join(dir, 'outside'), 'keep');
    fs.symlinkSync(path.join(dir, 'outside'), path.join(dir, 'f1'));
    const taken: string[] = [];
    const done: string[] = [];
    const files = NewFiles.create(hooksInto(dir, {
      done: (e) => done.push(e.path),
      takenFrom: (e, fd, offset) => {
        const b = Buffer.alloc(e.size);
        fs.readSync(fd, b, 0, e.size, offset);
        taken.push(`${e.path}=${b.toString()}`);
      },
      checkHash: false,
    }))!;
    for (let i = 0; i < 3; i++) {
      const fd = fs.openSync(path.join(dir, 'stored'), 'r');
      await files.submitFrom(makeEntry({ kind: 'f', path: `f${i}`, size: 4, mode: 0o644, hash: sha(content[i]!) }), fd, i * 4, true);
    }
    await files.drain();
    files.throwIfFailed();
    assert.deepEqual(taken, ['f1=one!']);
    assert.deepEqual(done.sort(), ['f0', 'f2']);
    assert.equal(fs.readFileSync(path.join(dir, 'f2'), 'utf8'), 'two.');
    assert.equal(fs.readFileSync(path.join(dir, 'outside'), 'utf8'), 'keep');

    const fd = fs.openSync(path.join(dir, 'stored'), 'r');
    await files.submitFrom(makeEntry({ kind: 'f', path: 'bad', size: 4, mode: 0o644, hash: sha(Buffer.from('else')) }), fd, 0, true);
    await files.drain();
    assert.throws(() => files.throwIfFailed(), /"bad" in the snapshot does not match its hash/);
    assert.equal(fs.existsSync(path.join(dir, 'bad')), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const SITE_FILES = ['site/small.txt', 'site/large.bin', 'site/zz-after.txt', ...Array.from({ length: 40 }, (_, i) => `site/sub/f${i + 1}`)];
const membersFile = (): string => path.join(snapDir('compressed'), layout.members);
const readMembersFile = (): { uOffset: number; cOffset: number }[] => JSON.parse(fs.readFileSync(membersFile(), 'utf8')) as { uOffset: number; cOffset: number }[];

/** Every file of the restored `folder` that exists holds exactly the home's bytes (no wrong content is ever left). */
function onlyExactFiles(folder: string): number {
  let present = 0;
  for (const rel of SITE_FILES) {
    if (!fs.existsSync(path.join(folder, rel))) continue;
    present++;
    assert.ok(fs.readFileSync(path.join(folder, rel)).equals(fs.readFileSync(path.join(account.home, rel))), rel);
  }
  assert.deepEqual(fs.readdirSync(path.join(folder, 'site')).filter((n) => n.startsWith('.tidemark-')), []);
  return present;
}

test('compressed by descriptor: the writer inflates the .tar.gz by gzip member; exact bytes, modes and ns times, a file across members included', async () => {
  assert.ok(readMembersFile().length >= 4, 'the large file spans several members');
  const r = ok(restore('compressed'));
  const folder = path.join(account.home, r.folder);
  assert.equal(onlyExactFiles(folder), SITE_FILES.length);
  for (const rel of SITE_FILES) {
    const a = fs.statSync(path.join(account.home, rel), { bigint: true });
    const b = fs.statSync(path.join(folder, rel), { bigint: true });
    assert.deepEqual([b.mode, b.uid, b.mtimeNs], [a.mode, a.uid, a.mtimeNs], rel);
  }
  fs.rmSync(folder, { recursive: true, force: true });
});

/** Runs a compressed restore with `change` applied to the stored `file`, then puts the file back. */
function withStored(file: string, change: (b: Buffer) => Buffer, check: () => void): void {
  const want = fs.readFileSync(file);
  fs.writeFileSync(file, change(Buffer.from(want)));
  try {
    check();
  } finally {
    fs.writeFileSync(file, want);
  }
}

function failsAsDamaged(pattern: RegExp): void {
  const r = restore('compressed');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr + r.stdout, pattern);
  const folder = folderOf(r);
  assert.ok(onlyExactFiles(folder) < SITE_FILES.length);
  fs.rmSync(folder, { recursive: true, force: true });
}

test('regression: a damaged gzip member of a compressed snapshot (inflated by the writer) leaves no file of it and names the damage', async () => {
  const entry = (await readIndexFile(path.join(snapDir('compressed'), layout.index))).find((e) => e.path === 'site/small.txt')!;
  const members = readMembersFile();
  let i = 0;
  while (i + 1 < members.length && members[i + 1]!.uOffset <= entry.dataRef) i++;
  const end = members[i + 1]?.cOffset ?? fs.statSync(path.join(snapDir('compressed'), layout.data('compressed'))).size;
  withStored(path.join(snapDir('compressed'), layout.data('compressed')), (b) => {
    const at = (members[i]!.cOffset + end) >> 1;
    b[at] = b[at]! ^ 0xff;
    return b;
  }, () => failsAsDamaged(/files\.tar\.gz: .+ while reading \\?"[^"]+\\?": the destination copy is damaged|does not match its hash/));
  const again = path.join(account.home, ok(restore('compressed')).folder);
  assert.equal(onlyExactFiles(again), SITE_FILES.length, 'whole again');
  fs.rmSync(again, { recursive: true, force: true });
});

test('compressed by descriptor: a member rewritten so that it inflates cleanly but one file\'s bytes differ: that file is not left (hash), the others are exact', async () => {
  const archive = path.join(snapDir('compressed'), layout.data('compressed'));
  // The member that holds bytes 100.. of f20 once inflated, and where they are in it.
  const victim = fs.readFileSync(path.join(account.home, 'site/sub/f20')).subarray(100, 164);
  const members = readMembersFile();
  const stored = fs.readFileSync(archive);
  let i = 0;
  let at = -1;
  for (; i < members.length && at < 0; i++) at = zlib.gunzipSync(stored.subarray(members[i]!.cOffset, members[i + 1]?.cOffset ?? stored.length)).indexOf(victim);
  i--;
  assert.ok(at >= 0);
  const wantList = fs.readFileSync(membersFile());
  withStored(archive, (raw) => {
    const end = members[i + 1]?.cOffset ?? raw.length;
    const inflated = zlib.gunzipSync(raw.subarray(members[i]!.cOffset, end));
    inflated[at] = inflated[at]! ^ 0x01;
    const again = zlib.gzipSync(inflated);
    const delta = again.length - (end - members[i]!.cOffset);
    fs.writeFileSync(membersFile(), JSON.stringify(members.map((m, k) => (k > i ? { ...m, cOffset: m.cOffset + delta } : m))));
    return Buffer.concat([raw.subarray(0, members[i]!.cOffset), again, raw.subarray(end)]);
  }, () => {
    try {
      const r = restore('compressed');
      assert.notEqual(r.code, 0);
      assert.match(r.stderr + r.stdout, /site\/sub\/f20\\?" in the snapshot does not match its hash/);
      const folder = folderOf(r);
      assert.equal(fs.existsSync(path.join(folder, 'site/sub/f20')), false);
      assert.ok(onlyExactFiles(folder) < SITE_FILES.length);
      fs.rmSync(folder, { recursive: true, force: true });
    } finally {
      fs.writeFileSync(membersFile(), wantList);
    }
  });
  const again = path.join(account.home, ok(restore('compressed')).folder);
  assert.equal(onlyExactFiles(again), SITE_FILES.length, 'whole again');
  fs.rmSync(again, { recursive: true, force: true });
});

test('regression: a gzip member list that lies (offsets shifted, or a member larger than a backup writes) is damage: no file with wrong content is left', async () => {
  const shifted = (delta: number) => (b: Buffer): Buffer => {
    const list = JSON.parse(b.toString('utf8')) as { uOffset: number; cOffset: number }[];
    return Buffer.from(JSON.stringify(list.map((m, k) => (k >= 2 ? { ...m, uOffset: m.uOffset + delta } : m))));
  };
  withStored(membersFile(), shifted(512), () => failsAsDamaged(/files\.tar\.gz: gzip member 1 inflates to \d+ bytes, not the \d+ its list gives while reading/));
  withStored(membersFile(), shifted(65 << 20), () => failsAsDamaged(/larger than any member a backup writes/));
  withStored(membersFile(), (b) => {
    const list = JSON.parse(b.toString('utf8')) as { uOffset: number; cOffset: number }[];
    return Buffer.from(JSON.stringify(list.map((m, k) => (k === 1 ? { ...m, cOffset: m.cOffset + 3 } : m))));
  }, () => failsAsDamaged(/files\.tar\.gz: .+ while reading .+: the destination copy is damaged/));
});

test('regression: a gzip member list replaced by a symlink is never followed: it is not handed to the writer, and nothing it says is used', async () => {
  const decoy = path.join(destDir, 'decoy-members.json');
  fs.writeFileSync(decoy, JSON.stringify([{ uOffset: 0, cOffset: 0 }, { uOffset: 7, cOffset: 7 }]));
  await withReplaced(membersFile(), (p) => fs.symlinkSync(decoy, p), () => {
    // Read as a stream (descriptorMode), which refuses the link where it needs the list to seek.
    const r = restore('compressed');
    if (r.code !== 0) assert.match(r.stderr + r.stdout, /files\.members\.json is not a regular file on the destination \(link\): refused/);
    const folder = r.code === 0 ? path.join(account.home, (r.json as { folder: string }).folder) : folderOf(r);
    onlyExactFiles(folder);
    fs.rmSync(folder, { recursive: true, force: true });
  });
  fs.rmSync(decoy);
});

const restoreFolders = (): string[] => fs.readdirSync(account.home).filter((n) => n.startsWith('tidemark-restore-')).sort();

for (const st of ['incremental', 'archive', 'compressed']) {
  test(`the whole home by descriptor (${st}): the index streams to the writer as it is read; the tree comes back exactly`, () => {
    const r = ok(cli(dataDir, ['restore', snapshots[st]!, '--destination', st, '--into-folder', '--wait']));
    const folder = path.join(account.home, r.folder);
    try {
      const want = snapshotTree(account.home, { skip: (rel) => rel.startsWith('tidemark-restore-') });
      assert.deepEqual(diffTrees(want, snapshotTree(folder), { ignoreRootTimes: true }), []);
      assert.equal(r.files.files, [...want.values()].filter((e) => e.type === 'file').length);
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });
}

test('regression: a whole-home restore whose streamed index is refused at its start makes no folder and names none', async () => {
  const index = path.join(snapDir('incremental'), layout.index);
  await withReplaced(index, (p) => fs.symlinkSync(`${index}.saved`, p), () => {
    const before = restoreFolders();
    const r = cli(dataDir, ['restore', snapshots.incremental!, '--destination', 'incremental', '--into-folder', '--wait']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr + r.stdout, /index\.bin\.gz is not a regular file/);
    assert.doesNotMatch(r.stderr + r.stdout, /restored so far/);
    assert.deepEqual(restoreFolders(), before);
  });
});

test('regression: a whole-home restore whose streamed index turns out damaged after its entries stops, naming the damage; what it left is exact', async () => {
  const index = path.join(snapDir('incremental'), layout.index);
  const want = fs.readFileSync(index);
  fs.writeFileSync(index, Buffer.concat([want, Buffer.from('not gzip at all, appended')]));
  try {
    const before = restoreFolders();
    const r = cli(dataDir, ['restore', snapshots.incremental!, '--destination', 'incremental', '--into-folder', '--wait']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr + r.stdout, /index\.bin\.gz: .*refused as damaged/);
    const made = restoreFolders().filter((n) => !before.includes(n));
    // Whether any entry went before the damage was found depends on the inflater's chunks: what
    // went is complete and exact, and a folder is named exactly when one was made.
    assert.equal(/restored so far are in the folder/.test(r.stderr + r.stdout), made.length === 1);
    for (const n of made) {
      for (const [rel, e] of snapshotTree(path.join(account.home, n))) {
        if (e.type === 'file') assert.ok(fs.readFileSync(path.join(account.home, n, rel)).equals(fs.readFileSync(path.join(account.home, rel))), rel);
      }
      fs.rmSync(path.join(account.home, n), { recursive: true, force: true });
    }
  } finally {
    fs.writeFileSync(index, want);
  }
});

for (const st of ['incremental', 'archive']) {
  test(`in place by descriptor (${st}): a file that holds the content keeps its inode; changed, missing, linked-to and hard-linked names come back exactly; a link is replaced, never followed`, () => {
    const site = path.join(account.home, 'site');
    const want = snapshotTree(site);
    const decoy = path.join(homeRoot, `decoy-${st}`);
    fs.writeFileSync(decoy, 'not the account\'s');
    const largeIno = fs.statSync(path.join(site, 'large.bin')).ino;
    asAccount(account, [
      'printf changed > site/small.txt',
      'rm site/sub/f3',
      'rm site/sub/f5',
      `ln -s ${decoy} site/sub/f5`,
      'ln site/sub/f7 site/f7-other-name',
      ': > site/sub/f9',
    ].join(' && '));
    const other = fs.readFileSync(path.join(site, 'f7-other-name'));
    try {
      const r = ok(cli(dataDir, ['restore', snapshots[st]!, '--destination', st, '--path', 'site', '--in-place', '--wait']));
      assert.equal(r.folder ?? null, null);
      fs.rmSync(path.join(site, 'f7-other-name'));
      assert.deepEqual(diffTrees(want, snapshotTree(site), { ignoreRootTimes: true }), []);
      assert.equal(fs.statSync(path.join(site, 'large.bin')).ino, largeIno, 'unchanged content: the file stays');
      assert.equal(fs.readFileSync(decoy, 'utf8'), 'not the account\'s');
      assert.equal(fs.lstatSync(path.join(site, 'sub/f5')).isFile(), true);
      assert.ok(other.equals(fs.readFileSync(path.join(site, 'sub/f7'))), 'the content is the same');
      assert.deepEqual(fs.readdirSync(path.join(site, 'sub')).filter((n) => n.startsWith('.tidemark-')), []);
    } finally {
      fs.rmSync(path.join(site, 'f7-other-name'), { force: true });
      fs.rmSync(decoy, { force: true });
    }
  });
}

test('regression: in place by descriptor, a damaged blob stops the restore and never replaces the file there (no warning that hides it)', async () => {
  const site = path.join(account.home, 'site');
  const before = fs.readFileSync(path.join(site, 'small.txt'));
  const blob = await blobOf('site/small.txt');
  const stored = fs.readFileSync(blob);
  const bad = Buffer.from(stored);
  bad[0] = bad[0]! ^ 0xff;
  fs.writeFileSync(blob, bad);
  asAccount(account, 'printf changed-in-the-home > site/small.txt');
  try {
    const r = cli(dataDir, ['restore', snapshots.incremental!, '--destination', 'incremental', '--path', 'site', '--in-place', '--wait']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr + r.stdout, /small\.txt.*does not match its hash/);
    assert.doesNotMatch(r.stderr + r.stdout, /restored so far are in the folder/);
    assert.equal(fs.readFileSync(path.join(site, 'small.txt'), 'utf8'), 'changed-in-the-home');
    assert.deepEqual(fs.readdirSync(site).filter((n) => n.startsWith('.tidemark-')), []);
  } finally {
    fs.writeFileSync(blob, stored);
    ok(cli(dataDir, ['restore', snapshots.incremental!, '--destination', 'incremental', '--path', 'site', '--in-place', '--wait']));
  }
  assert.ok(fs.readFileSync(path.join(site, 'small.txt')).equals(before));
});

/** The members of the compressed snapshot that hold any byte of the tar entries of `paths` (header and content). */
async function membersOf(paths: string[]): Promise<Set<number>> {
  const members = readMembersFile();
  const index = await readIndexFile(path.join(snapDir('compressed'), layout.index));
  const out = new Set<number>();
  for (const p of paths) {
    const e = index.find((x) => x.path === p)!;
    const end = e.dataRef + tarHeadersLength(e) + e.size;
    members.forEach((m, k) => {
      const mEnd = members[k + 1]?.uOffset ?? Infinity;
      if (m.uOffset < end && mEnd > e.dataRef) out.add(k);
    });
  }
  return out;
}

/** Breaks the gzip header of member `k` of the stored .tar.gz: any read of that member fails. */
function damageMember(raw: Buffer, k: number): Buffer {
  const at = readMembersFile()[k]!.cOffset;
  raw[at] = raw[at]! ^ 0xff;
  return raw;
}

const restoreInPlace = (): ReturnType<typeof cli> => cli(dataDir, ['restore', snapshots.compressed!, '--destination', 'compressed', '--in-place', '--wait']);
const homeTree = (): Map<string, ReturnType<typeof snapshotTree> extends Map<string, infer T> ? T : never> => snapshotTree(account.home, { skip: (rel) => rel.startsWith('tidemark-restore-') });

test('compressed in place by descriptor: changed, missing, shortened and linked-over files come back exact (bytes, modes, ns times); an exact file\'s members (the large file\'s) are never read', async () => {
  const want = homeTree();
  const changed = ['site/sub/f3', 'site/sub/f5', 'site/sub/f40', 'site/small.txt'];
  // A member none of the changed files touches: damaged, it would fail the restore if it were read.
  const needed = await membersOf(changed);
  const untouched = readMembersFile().findIndex((_, k) => !needed.has(k));
  assert.ok(untouched >= 0);
  const p = (rel: string): string => path.join(account.home, rel);
  asAccount(account, [
    `head -c ${fs.statSync(p('site/sub/f3')).size} /dev/urandom > site/sub/f3`,
    'rm site/sub/f5',
    'truncate -s 1000 site/sub/f40',
    'rm site/small.txt && ln -s /etc/passwd site/small.txt',
    'chmod 600 site/sub/f7',
  ].join(' && '));
  withStored(path.join(snapDir('compressed'), layout.data('compressed')), (b) => damageMember(b, untouched), () => {
    const r = ok(restoreInPlace());
    assert.equal(r.folder ?? null, null);
  });
  assert.deepEqual(diffTrees(want, homeTree(), { ignoreRootTimes: true }), []);
  assert.equal(fs.readFileSync('/etc/passwd', 'utf8').includes('root'), true, 'the link was replaced, never followed');
  assert.deepEqual(fs.readdirSync(p('site')).filter((n) => n.startsWith('.tidemark-')), []);
});

test('regression: compressed in place, a changed file whose stored copy is damaged is never replaced; the restore stops naming the damage', async () => {
  const want = homeTree();
  const victim = 'site/sub/f20';
  const [k] = [...await membersOf([victim])];
  const original = fs.readFileSync(path.join(account.home, victim));
  const mine = Buffer.from('the account changed this file since the backup\n');
  fs.writeFileSync(path.join(account.home, victim), mine);
  withStored(path.join(snapDir('compressed'), layout.data('compressed')), (b) => {
    // Its own bytes where they are stored as they are (else the member's header): only its check can fail.
    const at = b.indexOf(original.subarray(100, 164));
    if (at < 0) return damageMember(b, k!);
    b[at] = b[at]! ^ 0xff;
    return b;
  }, () => {
    const r = restoreInPlace();
    assert.notEqual(r.code, 0);
    assert.match(r.stderr + r.stdout, /files\.tar\.gz: .+ while reading .+: the destination copy is damaged|does not match its hash/);
    assert.doesNotMatch(r.stderr + r.stdout, /restored so far are in the folder/);
  });
  assert.ok(fs.readFileSync(path.join(account.home, victim)).equals(mine), 'the account\'s own copy stays whole');
  assert.deepEqual(fs.readdirSync(path.join(account.home, 'site/sub')).filter((n) => n.startsWith('.tidemark-')), []);
  ok(restoreInPlace());
  assert.deepEqual(diffTrees(want, homeTree(), { ignoreRootTimes: true }), []);
});
