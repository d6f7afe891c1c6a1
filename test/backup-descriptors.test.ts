// An incremental backup's files of 64 KiB to 1 MiB reach root as descriptors the account worker
// sends over its descriptor channel (backup-reader.ts, descriptor-content.ts), not as bytes in
// the entry stream. The channel is a boundary: a worker running as the account can be made to
// send anything the account can open, so root takes exactly one descriptor per record that
// announces one, without waiting, only of a regular file on the home's filesystem, and reads
// exactly the announced size.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';
import { readIndexFile } from './support/stored-files.js';
import { diffTrees, snapshotTree } from './support/tree.js';
import { sendFdSync, sendWithFds, socketPair, takeFd } from '../server/native/pass-fds.js';
import { DescriptorRefused, readDescriptorContent } from '../server/engine/descriptor-content.js';
import { layout } from '../server/engine/snapshot-layout.js';

let dir: string;
let homeRoot: string;
let account: TestAccount;
const cleanups: (() => void)[] = [];

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-backup-fds-'));
  homeRoot = makeHomeRoot();
  account = createAccount(homeRoot);
});

after(() => {
  for (const c of cleanups) c();
  if (account) removeAccount(account);
  if (homeRoot) fs.rmSync(homeRoot, { recursive: true, force: true });
  fs.rmSync(dir, { recursive: true, force: true });
});

const openFds = (): number => fs.readdirSync('/proc/self/fd').length;
const sha = (b: Buffer): Buffer => crypto.createHash('sha256').update(b).digest();

/** A socket pair for one test: [worker's end, root's end], closed after. */
function channel(): [number, number] {
  const [w, r] = socketPair();
  cleanups.push(() => { for (const fd of [w, r]) try { fs.closeSync(fd); } catch { /* closed by the test */ } });
  return [w, r];
}

test('descriptor channel: one descriptor per take, in order; none there is EAGAIN at once, never a wait', () => {
  const [w, r] = channel();
  assert.throws(() => takeFd(r), { code: 'EAGAIN' });
  for (const name of ['a', 'b']) {
    fs.writeFileSync(path.join(dir, name), name.repeat(3));
    const fd = fs.openSync(path.join(dir, name), 'r');
    sendFdSync(w, fd);
    fs.closeSync(fd);
  }
  for (const name of ['a', 'b']) {
    const fd = takeFd(r);
    assert.equal(fs.readFileSync(fd, 'utf8'), name.repeat(3));
    fs.closeSync(fd);
  }
  assert.throws(() => takeFd(r), { code: 'EAGAIN' });
  fs.closeSync(w);
  assert.throws(() => takeFd(r), { code: 'EPIPE' }, 'the worker went away');
});

test('descriptor channel: a directory, a byte without a descriptor, or several descriptors at once are refused and nothing stays open', async () => {
  const [w, r] = channel();
  const base = openFds();
  const dirFd = fs.openSync(dir, 'r');
  sendFdSync(w, dirFd);
  fs.closeSync(dirFd);
  assert.throws(() => takeFd(r), { code: 'EBADF' });
  assert.equal(openFds(), base, 'the directory received was closed');

  await sendWithFds(w, Buffer.from('x'), [], false);
  assert.throws(() => takeFd(r), { code: 'EBADF' });

  fs.writeFileSync(path.join(dir, 'two'), 'two');
  const a = fs.openSync(path.join(dir, 'two'), 'r');
  const b = fs.openSync(path.join(dir, 'two'), 'r');
  await sendWithFds(w, Buffer.from('y'), [a, b], true);
  assert.throws(() => takeFd(r), { code: 'EBADF' });
  assert.equal(openFds(), base, 'both received were closed');
});

test('readDescriptorContent: exactly the announced size, in one piece; a file that shrank is padded with zeros', async () => {
  const homeDev = fs.statSync(dir, { bigint: true }).dev;
  const content = crypto.randomBytes(300_000);
  fs.writeFileSync(path.join(dir, 'c'), content);
  const [w, r] = channel();
  const send = (): void => { const fd = fs.openSync(path.join(dir, 'c'), 'r'); sendFdSync(w, fd); fs.closeSync(fd); };
  const pieces: Buffer[] = [];
  const take = async (p: Buffer): Promise<void> => { pieces.push(p); };

  send();
  assert.deepEqual(await readDescriptorContent(r, homeDev, content.length, take), { shrank: false });
  assert.equal(pieces.length, 1);
  assert.ok(pieces[0]!.equals(content));

  pieces.length = 0;
  send();
  assert.deepEqual(await readDescriptorContent(r, homeDev, 1000, take), { shrank: false }, 'a file that grew: only what was announced');
  assert.ok(Buffer.concat(pieces).equals(content.subarray(0, 1000)));

  pieces.length = 0;
  send();
  const announced = 1 << 20;
  assert.deepEqual(await readDescriptorContent(r, homeDev, announced, take), { shrank: true });
  const got = Buffer.concat(pieces);
  assert.equal(got.length, announced);
  assert.ok(got.subarray(0, content.length).equals(content));
  assert.ok(got.subarray(content.length).equals(Buffer.alloc(announced - content.length)));
  assert.equal(pieces.length, 1, 'one piece');
});

test('readDescriptorContent: a file of another filesystem, a record without its descriptor, a size above 1 MiB, a directory: refused, nothing read', async () => {
  const homeDev = fs.statSync(dir, { bigint: true }).dev;
  const [w, r] = channel();
  const base = openFds();
  const read: Buffer[] = [];
  const take = async (p: Buffer): Promise<void> => { read.push(p); };

  // /proc is another filesystem, as a FUSE or network mount the account brought in would be.
  const other = fs.openSync('/proc/self/status', 'r');
  assert.notEqual(fs.fstatSync(other, { bigint: true }).dev, homeDev);
  sendFdSync(w, other);
  fs.closeSync(other);
  await assert.rejects(readDescriptorContent(r, homeDev, 100, take), (e: Error) => e instanceof DescriptorRefused && /outside the home's filesystem/.test(e.message));

  await assert.rejects(readDescriptorContent(r, homeDev, 100, take), (e: Error) => e instanceof DescriptorRefused && /did not send/.test(e.message));

  // More than the worker ever sends by descriptor: root would pad a short file up to it.
  const small = fs.openSync(path.join(dir, 'c'), 'r');
  sendFdSync(w, small);
  fs.closeSync(small);
  await assert.rejects(readDescriptorContent(r, homeDev, 1 << 30, take), (e: Error) => e instanceof DescriptorRefused && /announced 1073741824 bytes/.test(e.message));

  const d = fs.openSync(dir, 'r');
  sendFdSync(w, d);
  fs.closeSync(d);
  await assert.rejects(readDescriptorContent(r, homeDev, 100, take), (e: Error) => e instanceof DescriptorRefused && /regular file/.test(e.message));
  assert.equal(read.length, 0);
  assert.equal(openFds(), base, 'every descriptor received was closed');
});

test('an incremental backup stores files on both sides of the descriptor sizes exactly, hashed by root, and restores them', async () => {
  const sizes = [65535, 65536, 65537, 300_000, 1 << 20, (1 << 20) + 1, 3 << 20];
  const files = new Map<string, Buffer>();
  for (const size of sizes) files.set(`data/f-${size}`, crypto.randomBytes(size));
  files.set('data/unreadable-by-mode', crypto.randomBytes(200_000));
  files.set('data/linked', crypto.randomBytes(150_000));
  for (const [rel, content] of files) {
    fs.mkdirSync(path.join(account.home, path.dirname(rel)), { recursive: true });
    fs.writeFileSync(path.join(account.home, rel), content);
  }
  fs.linkSync(path.join(account.home, 'data/linked'), path.join(account.home, 'data/linked-too'));
  fs.chmodSync(path.join(account.home, 'data/unreadable-by-mode'), 0o000);
  for (const rel of ['data', ...files.keys(), 'data/linked-too']) fs.lchownSync(path.join(account.home, rel), account.uid, account.gid);

  const dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  const destDir = makeDestinationDir();
  cleanups.push(() => { fs.rmSync(dataDir, { recursive: true, force: true }); fs.rmSync(destDir, { recursive: true, force: true }); });
  ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
  ok(cli(dataDir, ['job', 'add', '--name', 'j', '--destination', 'disk', '--structure', 'incremental', '--accounts', account.username, '--items', 'files']));
  const before = snapshotTree(account.home);
  const snapshot = ok(cli(dataDir, ['backup', '--job', 'j', '--wait'])).snapshots[0] as string;

  const snapDir = path.join(destDir, layout.snapshotDir(account.username, snapshot));
  const entries = await readIndexFile(path.join(snapDir, layout.index));
  for (const [rel, content] of files) {
    const e = entries.find((x) => x.path === rel);
    assert.ok(e && e.kind === 'f', rel);
    assert.ok(e.hash?.equals(sha(content)), `${rel}: root's hash of what it stored`);
    assert.ok(fs.readFileSync(path.join(snapDir, layout.blob(e.dataRef))).equals(content), `${rel}: stored exactly`);
  }
  assert.equal(entries.find((x) => x.path === 'data/linked-too')?.kind, 'h');
  assert.equal(fs.statSync(path.join(account.home, 'data/unreadable-by-mode')).mode & 0o7777, 0, 'its mode put back');

  const manifest = JSON.parse(fs.readFileSync(path.join(snapDir, layout.manifest), 'utf8'));
  assert.equal(manifest.stats.skipped, 0);
  assert.equal(cli(dataDir, ['snapshot', 'verify', snapshot]).code, 0);

  fs.rmSync(path.join(account.home, 'data'), { recursive: true });
  ok(cli(dataDir, ['restore', snapshot, '--wait']));
  assert.deepEqual(diffTrees(before, snapshotTree(account.home)), []);
});
