import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn, execFileSync } from 'node:child_process';
import { makeEntry } from '../server/engine/format/entry.js';
import { tarHeaders, tarPadding, TAR_END } from '../server/engine/format/tar.js';
import { TarHasher } from '../server/engine/format/tar-hasher.js';
import { pumpTar, tarPipe, tarPumpAvailable } from '../server/native/tar-pump.js';
import { closeQuietly } from '../server/util/close-fd.js';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { LocalDestination } from '../server/destinations/local.js';
import { backupAccount } from '../server/engine/backup.js';
import { verifySnapshotData } from '../server/engine/verify.js';
import { layout } from '../server/engine/snapshot-layout.js';
import type { Account } from '../server/panels/types.js';

/**
 * The archive structure's native copy (native/tar-pump.c): the hashes it gives are the ones
 * TarHasher (the JavaScript reference) gives for the same stream, wherever its 1 MiB slots and
 * 64 KiB pieces cut headers, content and padding; a destination that fails ends the copy
 * with that error, and a backup with it.
 */
const dirs: string[] = [];
const tmp = (): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-pump-'));
  dirs.push(d);
  return d;
};

/** A tar of files whose sizes put slot and piece boundaries in headers, content and padding, with long names (L blocks) and a link. */
function sampleTar(): Buffer {
  const parts: Buffer[] = [];
  let n = 0;
  const file = (size: number, name = `f${n}`): void => {
    const content = crypto.randomBytes(size);
    parts.push(tarHeaders(makeEntry({ kind: 'f', path: `${name}-${n++}`, mode: 0o644, uid: 1, gid: 1, size, mtimeSec: 1_700_000_000 })));
    parts.push(content, Buffer.alloc(tarPadding(size)));
  };
  parts.push(tarHeaders(makeEntry({ kind: 'd', path: 'dir', mode: 0o755, uid: 1, gid: 1, mtimeSec: 1 })));
  for (const size of [0, 1, 511, 512, 513, 65536 - 512, 65536, 65537, (1 << 20) - 1536, (1 << 20) + 7, 3 << 20]) file(size);
  for (let i = 0; i < 300; i++) file(crypto.randomInt(0, 40000), i % 7 === 0 ? 'x'.repeat(150 + i) : 'small');
  parts.push(tarHeaders(makeEntry({ kind: 'l', path: 'link', link: 'y'.repeat(300), mode: 0o777, uid: 1, gid: 1, mtimeSec: 1 })));
  file(12345);
  parts.push(TAR_END, Buffer.alloc(10240 - 1024));
  return Buffer.concat(parts);
}

/** The hashes TarHasher gives for `tar`, by offset. */
async function referenceHashes(tar: Buffer): Promise<Map<number, string>> {
  const h = new TarHasher();
  const offsets: number[] = [];
  // Every header offset the reference knows: found by asking for each 512-byte block.
  h.resume();
  await new Promise<void>((resolve, reject) => { h.on('finish', resolve); h.on('error', reject); h.end(tar); });
  const out = new Map<number, string>();
  for (let o = 0; o < tar.length; o += 512) offsets.push(o);
  for (const o of offsets) { const x = h.takeHash(o); if (x) out.set(o, x.toString('hex')); }
  return out;
}

/**
 * The tar digest of integrity version 2, written down again from its definition in
 * docs/snapshot-format.md on a whole buffer (not streamed), so that the native and the
 * JavaScript scanners are checked against something they do not share: every byte but a
 * regular file's content, that content's SHA-256 in its place (of what there is, for a
 * content the stream's end cuts short), everything from the end-of-archive block on as it
 * is, then the length as u64 LE.
 */
function referenceTarDigest(tar: Buffer): string {
  const digest = crypto.createHash('sha256');
  const size = (h: Buffer): number => {
    if (h[124]! & 0x80) { let v = 0; for (let i = 125; i < 136; i++) v = v * 256 + h[i]!; return v; }
    const m = /^[\0 ]*([0-7]+)/.exec(h.subarray(124, 136).toString('latin1'));
    return m ? parseInt(m[1]!, 8) : 0;
  };
  let o = 0;
  while (o < tar.length) {
    const h = tar.subarray(o, o + 512);
    if (h.length === 512 && h.every((b) => b === 0)) break;
    digest.update(h);
    o += 512;
    if (h.length < 512) break;
    const n = size(h);
    const content = tar.subarray(o, o + n);
    digest.update([0, 0x30, 0x37].includes(h[156]!) ? crypto.createHash('sha256').update(content).digest() : content);
    o += n;
    const pad = tar.subarray(o, o + (512 - (n % 512)) % 512);
    digest.update(pad);
    o += (512 - (n % 512)) % 512;
  }
  if (o < tar.length) digest.update(tar.subarray(o));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(tar.length));
  return digest.update(length).digest('hex');
}

/** TarHasher's tar digest of `tar`, fed in pieces of `piece` bytes. */
async function jsTarDigest(tar: Buffer, piece = 65536): Promise<string> {
  const h = new TarHasher({ digest: true, keepHashes: false });
  h.resume();
  const done = new Promise<void>((resolve, reject) => { h.on('finish', resolve); h.on('error', reject); });
  for (let o = 0; o < tar.length; o += piece) h.write(tar.subarray(o, o + piece));
  h.end();
  await done;
  return h.tarDigest().toString('hex');
}

/** Feeds `tar` into a fresh pipe with cat (in pieces of whatever size the pipe takes) and pumps it into `dst`. */
function pumpFromFile(tarPath: string, dst: number, onError: (err: Error) => void = () => undefined): { pump: ReturnType<typeof pumpTar>; cat: ReturnType<typeof spawn>; close: () => void } {
  const [r, w] = tarPipe();
  const cat = spawn('cat', [tarPath], { stdio: ['ignore', w, 'inherit'] });
  closeQuietly(w);
  const pump = pumpTar(r, dst, (err) => { onError(err); cat.kill('SIGKILL'); });
  return { pump, cat, close: () => closeQuietly(r) };
}

let homeRoot: string;
let acct: TestAccount;
let account: Account;

before(() => {
  homeRoot = makeHomeRoot();
  acct = createAccount(homeRoot);
  fs.writeFileSync(path.join(acct.home, 'big.bin'), crypto.randomBytes(5 << 20));
  // Around the size from which the worker splices content into the tar pipe.
  for (const size of [(64 << 10) - 1, 64 << 10, (64 << 10) + 1, (1 << 20) + 3]) fs.writeFileSync(path.join(acct.home, `edge-${size}.bin`), crypto.randomBytes(size));
  for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(acct.home, `s${i}.txt`), `small ${i}\n`.repeat(i * 37));
  execFileSync('chown', ['-R', `${acct.uid}:${acct.gid}`, acct.home]);
  account = { username: acct.username, owner: 'root', home: acct.home, uid: acct.uid, gid: acct.gid, domains: [], databases: [], databaseUsers: [],
    suspended: false, package: null, contactEmail: null };
});

after(() => {
  removeAccount(acct);
  for (const d of [homeRoot, ...dirs]) fs.rmSync(d, { recursive: true, force: true });
});

test('the native tar copy is built (the archive structure uses it for local destinations)', () => {
  assert.equal(tarPumpAvailable, true);
});

test('native per-file hashes equal TarHasher\'s, the copy is exact and its tar digest is the reference\'s, across slot and piece boundaries', async () => {
  const dir = tmp();
  const tar = sampleTar();
  const tarPath = path.join(dir, 'in.tar');
  fs.writeFileSync(tarPath, tar);
  const outPath = path.join(dir, 'out.tar');
  const dst = fs.openSync(outPath, 'w');
  const { pump, close } = pumpFromFile(tarPath, dst);
  let result;
  try {
    result = await pump.done;
  } finally {
    close();
    fs.closeSync(dst);
  }
  assert.equal(result.bytes, tar.length);
  assert.equal(result.tarDigest.toString('hex'), referenceTarDigest(tar));
  assert.equal(await jsTarDigest(tar), referenceTarDigest(tar));
  assert.ok(fs.readFileSync(outPath).equals(tar));
  const expected = await referenceHashes(tar);
  assert.ok(expected.size > 300);
  for (const [offset, hash] of expected) assert.equal(pump.takeHash(offset)?.toString('hex'), hash, `file at ${offset}`);
  // Taken once: forgotten after.
  assert.equal(pump.takeHash([...expected.keys()][0]!), undefined);
});

test('a tar larger than the write-out step (16 MiB) is copied exactly into a regular file, whose write-out starts during the copy', async () => {
  const dir = tmp();
  const parts: Buffer[] = [];
  for (let i = 0; i < 5; i++) {
    const size = (9 << 20) + i * 4099;
    parts.push(tarHeaders(makeEntry({ kind: 'f', path: `big-${i}`, mode: 0o644, uid: 1, gid: 1, size, mtimeSec: 1 })), crypto.randomBytes(size), Buffer.alloc(tarPadding(size)));
  }
  parts.push(TAR_END);
  const tar = Buffer.concat(parts);
  const tarPath = path.join(dir, 'in.tar');
  fs.writeFileSync(tarPath, tar);
  const outPath = path.join(dir, 'out.tar');
  const dst = fs.openSync(outPath, 'w');
  const { pump, close } = pumpFromFile(tarPath, dst);
  try {
    const result = await pump.done;
    assert.equal(result.bytes, tar.length);
    assert.equal(result.tarDigest.toString('hex'), referenceTarDigest(tar));
  } finally {
    close();
    fs.closeSync(dst);
  }
  assert.ok(fs.readFileSync(outPath).equals(tar));
});

test('the tar digest of a stream cut anywhere (a header, a content, a padding, after the end) is the reference\'s, natively and in JavaScript', async () => {
  const tar = sampleTar();
  const dir = tmp();
  // Offsets inside the first file with content (header at 512, content from 1024), a long name, and the trailer.
  const cuts = [0, 100, 512, 600, 1024, 1025, 1536, 2000, 70_000, 1_000_003, tar.length - 9000, tar.length - 1024, tar.length - 1];
  for (const cut of cuts) {
    const part = tar.subarray(0, cut);
    const expected = referenceTarDigest(part);
    assert.equal(await jsTarDigest(part, 1000), expected, `JavaScript, cut at ${cut}`);
    const tarPath = path.join(dir, `cut-${cut}.tar`);
    fs.writeFileSync(tarPath, part);
    const dst = fs.openSync('/dev/null', 'w');
    const { pump, close } = pumpFromFile(tarPath, dst);
    try {
      assert.equal((await pump.done).tarDigest.toString('hex'), expected, `native, cut at ${cut}`);
    } finally {
      close();
      fs.closeSync(dst);
    }
  }
});

test('regression: the tar digest misses no byte: a flip in any header, content, padding or trailer byte changes it', async () => {
  // Small, so that every byte is flipped: a directory, files with and without content, a long name, a symlink with a long target, the end blocks.
  const entry = (e: Parameters<typeof makeEntry>[0], content = Buffer.alloc(0)): Buffer[] => [tarHeaders(makeEntry(e)), content, Buffer.alloc(tarPadding(content.length))];
  const tar = Buffer.concat([
    ...entry({ kind: 'd', path: 'dir', mode: 0o755, uid: 1, gid: 1, mtimeSec: 1 }),
    ...entry({ kind: 'f', path: 'empty', mode: 0o644, uid: 1, gid: 1, size: 0, mtimeSec: 2 }),
    ...entry({ kind: 'f', path: 'five', mode: 0o644, uid: 1, gid: 1, size: 5, mtimeSec: 3 }, Buffer.from('hello')),
    ...entry({ kind: 'f', path: 'n'.repeat(200), mode: 0o600, uid: 1, gid: 1, size: 700, mtimeSec: 4 }, crypto.randomBytes(700)),
    ...entry({ kind: 'l', path: 'link', link: 'y'.repeat(300), mode: 0o777, uid: 1, gid: 1, mtimeSec: 5 }),
    TAR_END, Buffer.alloc(512),
  ]);
  const whole = referenceTarDigest(tar);
  assert.equal(await jsTarDigest(tar, 333), whole);
  const seen = new Set([whole]);
  for (let at = 0; at < tar.length; at++) {
    const spoiled = Buffer.from(tar);
    spoiled[at] = spoiled[at]! ^ 0x01;
    const got = await jsTarDigest(spoiled, 333);
    assert.notEqual(got, whole, `byte ${at}`);
    seen.add(got);
  }
  assert.equal(seen.size, tar.length + 1);
  // A tar with one more zero byte, or one fewer, is another stream.
  assert.notEqual(await jsTarDigest(Buffer.concat([tar, Buffer.alloc(1)])), whole);
  assert.notEqual(await jsTarDigest(tar.subarray(0, tar.length - 1)), whole);
});

test('a destination that fails (ENOSPC) ends the native copy with that error, and stops the writer', async () => {
  const dir = tmp();
  const tarPath = path.join(dir, 'in.tar');
  fs.writeFileSync(tarPath, sampleTar());
  const dst = fs.openSync('/dev/full', 'w');
  let told: Error | null = null;
  const { pump, cat, close } = pumpFromFile(tarPath, dst, (err) => { told = err; });
  try {
    await assert.rejects(pump.done, (err: NodeJS.ErrnoException) => err.code === 'ENOSPC');
  } finally {
    close();
    fs.closeSync(dst);
  }
  assert.equal((told as NodeJS.ErrnoException | null)?.code, 'ENOSPC');
  await new Promise((r) => (cat.exitCode !== null || cat.signalCode !== null ? r(null) : cat.once('exit', r)));
});

/** A Local destination whose archive file is /dev/full: every write fails with ENOSPC. */
class FullDestination extends LocalDestination {
  override openWriteFd(rel: string): number {
    fs.closeSync(super.openWriteFd(rel));
    return fs.openSync('/dev/full', 'w');
  }
}

test('archive to a local destination: index hashes and the tar digest are root\'s, and verify finds nothing damaged', async () => {
  const dir = tmp();
  const dest = new LocalDestination(dir);
  await dest.open();
  const m = await backupAccount({ account, destination: dest, structure: 'archive', items: ['files'], excludes: [], jobName: 'pump', previousId: null,
    mysql: async () => { throw new Error('no databases'); } });
  const stored = fs.readFileSync(path.join(dir, layout.snapshotDir(acct.username, m.id), layout.data('archive')));
  assert.equal(m.integrity?.version, 2);
  assert.equal(m.integrity?.data, null);
  assert.equal(m.integrity?.tar, referenceTarDigest(stored));
  assert.equal(m.stats.storedBytes, stored.length);
  assert.deepEqual((await verifySnapshotData(dest, acct.username, m.id)).damaged, []);
  // The bytes themselves (spliced or copied by the worker): GNU tar extracts the home exactly.
  const out = tmp();
  execFileSync('tar', ['-xf', path.join(dir, layout.snapshotDir(acct.username, m.id), layout.data('archive')), '-C', out]);
  for (const name of fs.readdirSync(acct.home)) {
    if (!fs.statSync(path.join(acct.home, name)).isFile()) continue;
    assert.ok(fs.readFileSync(path.join(out, name)).equals(fs.readFileSync(path.join(acct.home, name))), name);
  }
});

test('archive through the stream pipeline (a destination without openWriteFd: SSH, S3): the same tar digest, and verify finds nothing damaged', async () => {
  const dir = tmp();
  const dest = new LocalDestination(dir);
  Object.defineProperty(dest, 'openWriteFd', { value: undefined });
  await dest.open();
  const m = await backupAccount({ account, destination: dest, structure: 'archive', items: ['files'], excludes: [], jobName: 'stream', previousId: null,
    mysql: async () => { throw new Error('no databases'); } });
  const stored = fs.readFileSync(path.join(dir, layout.snapshotDir(acct.username, m.id), layout.data('archive')));
  assert.deepEqual([m.integrity?.version, m.integrity?.data, m.integrity?.tar], [2, null, referenceTarDigest(stored)]);
  assert.deepEqual((await verifySnapshotData(dest, acct.username, m.id)).damaged, []);
});

test('compressed keeps the SHA-256 of the whole files.tar.gz under integrity version 2', async () => {
  const dir = tmp();
  const dest = new LocalDestination(dir);
  await dest.open();
  const m = await backupAccount({ account, destination: dest, structure: 'compressed', items: ['files'], excludes: [], jobName: 'gz', previousId: null,
    mysql: async () => { throw new Error('no databases'); } });
  const stored = fs.readFileSync(path.join(dir, layout.snapshotDir(acct.username, m.id), layout.data('compressed')));
  assert.equal(m.integrity?.version, 2);
  assert.equal(m.integrity?.data, crypto.createHash('sha256').update(stored).digest('hex'));
  assert.equal(m.integrity?.tar, undefined);
  assert.deepEqual((await verifySnapshotData(dest, acct.username, m.id)).damaged, []);
});

test('spliceToPipe moves a file\'s bytes into a pipe from its position, and fewer only at its end (a file that shrank)', async () => {
  const { spliceToPipe } = await import('../server/native/splice-file.js');
  assert.ok(spliceToPipe);
  const dir = tmp();
  const data = crypto.randomBytes(200_000);
  fs.writeFileSync(path.join(dir, 'f'), data);
  const fd = fs.openSync(path.join(dir, 'f'), 'r');
  const [r, w] = tarPipe();
  const got: Buffer[] = [];
  const reader = fs.createReadStream('', { fd: r });
  reader.on('data', (c) => got.push(c as Buffer));
  const ended = new Promise<void>((resolve) => reader.on('close', () => resolve()));
  try {
    fs.readSync(fd, Buffer.alloc(1000), 0, 1000, null);
    assert.equal(spliceToPipe!(fd, w, 100_000), 100_000);
    assert.equal(spliceToPipe!(fd, w, 500_000), 99_000);
    assert.equal(spliceToPipe!(fd, w, 10), 0);
    // Neither end a pipe: the error is thrown (the worker then reads and writes instead).
    const other = fs.openSync(path.join(dir, 'g'), 'w');
    try {
      assert.throws(() => spliceToPipe!(fd, other, 10), (err: NodeJS.ErrnoException) => err.code === 'EINVAL');
    } finally {
      fs.closeSync(other);
    }
  } finally {
    fs.closeSync(fd);
    closeQuietly(w);
  }
  await ended;
  assert.ok(Buffer.concat(got).equals(data.subarray(1000)));
});

test('regression: an archive to a destination that fails (ENOSPC) through the native copy ends with that error, stops the worker and leaves no snapshot', async () => {
  const dir = tmp();
  const dest = new FullDestination(dir);
  await dest.open();
  await assert.rejects(
    backupAccount({ account, destination: dest, structure: 'archive', items: ['files'], excludes: [], jobName: 'full', previousId: null,
      mysql: async () => { throw new Error('no databases'); } }),
    (err: Error) => /ENOSPC|space/i.test(`${(err as NodeJS.ErrnoException).code} ${err.message}`),
  );
  assert.deepEqual(fs.readdirSync(path.join(dir, acct.username)).filter((n) => !n.startsWith('.lease')), []);
});

test('sendFileTo sends a file\'s bytes into a socket from its position, and fewer only at its end (a file that shrank)', async () => {
  const { sendFileTo } = await import('../server/native/splice-file.js');
  const { socketPair } = await import('../server/native/pass-fds.js');
  const net = await import('node:net');
  assert.ok(sendFileTo);
  const dir = tmp();
  // Less than a socket pair holds: the sends never wait for the reader, which runs after them.
  const data = crypto.randomBytes(120_000);
  fs.writeFileSync(path.join(dir, 'f'), data);
  const fd = fs.openSync(path.join(dir, 'f'), 'r');
  const [a, b] = socketPair();
  const got: Buffer[] = [];
  const reader = new net.Socket({ fd: b, readable: true, writable: false });
  reader.on('data', (c) => got.push(c));
  const ended = new Promise<void>((resolve) => reader.on('close', () => resolve()));
  try {
    fs.readSync(fd, Buffer.alloc(1000), 0, 1000, null);
    assert.equal(sendFileTo!(fd, a, 70_000), 70_000);
    assert.equal(sendFileTo!(fd, a, 500_000), 49_000);
    assert.equal(sendFileTo!(fd, a, 10), 0);
  } finally {
    fs.closeSync(fd);
    fs.closeSync(a);
  }
  await ended;
  assert.ok(Buffer.concat(got).equals(data.subarray(1000)));
});
