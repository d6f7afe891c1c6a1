// Root opens the blobs of an incremental snapshot in batches (native/open-files.c,
// LocalDestination.openManyForReads, DirectReads.blobDescriptors) to hand their descriptors to
// the restore writer. Each blob keeps the refusals of openForReads: only a regular file is ever
// opened (a link, a directory, a fifo or a device never is), never through a link, in a folder
// that is root's only; a missing blob is damage and a short one too.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { LocalDestination } from '../server/destinations/local.js';
import { openFilesAt } from '../server/native/open-files.js';
import { DirectReads } from '../server/engine/direct-reads.js';
import { layout } from '../server/engine/snapshot-layout.js';
import { makeEntry } from '../server/engine/format/entry.js';
import { SnapshotInputError } from '../server/engine/untrusted-input.js';

const made: string[] = [];
after(() => { for (const d of made) fs.rmSync(d, { recursive: true, force: true }); });

function tmp(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-open-files-'));
  made.push(dir);
  return dir;
}

const openFds = (): number => fs.readdirSync('/proc/self/fd').length;

/** A folder holding one of each kind of name. */
function hostileFolder(): string {
  const dir = tmp();
  fs.writeFileSync(path.join(dir, 'file'), 'content');
  fs.writeFileSync(path.join(dir, 'empty'), '');
  fs.writeFileSync(path.join(dir, 'target'), 'secret');
  fs.symlinkSync(path.join(dir, 'target'), path.join(dir, 'link'));
  fs.symlinkSync('/nonexistent', path.join(dir, 'dangling'));
  fs.mkdirSync(path.join(dir, 'dir'));
  execFileSync('mkfifo', [path.join(dir, 'fifo')]);
  execFileSync('mknod', [path.join(dir, 'device'), 'c', '1', '3']);
  fs.writeFileSync(path.join(dir, 'others'), 'owned by someone else');
  fs.chownSync(path.join(dir, 'others'), 65534, 65534);
  return dir;
}

test('openFilesAt: only regular files are opened (a link, a directory, a fifo or a device never is), each with its size; bad names are refused', async () => {
  const dir = hostileFolder();
  const dirFd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  const before = openFds();
  try {
    const names = ['file', 'empty', 'missing', 'link', 'dangling', 'dir', 'fifo', 'device', 'others', '../file', 'a/b', '..', '.', '', 'x\0y', 'x'.repeat(300)];
    const got = await openFilesAt(dirFd, names);
    assert.deepEqual(got.map((g) => g.type), ['file', 'file', 'missing', 'link', 'link', 'dir', 'other', 'other', 'file', 'error', 'error', 'error', 'error', 'error', 'error', 'error']);
    const file = got[0] as { fd: number; size: number };
    assert.equal(file.size, 7);
    assert.equal(fs.readFileSync(file.fd, 'utf8'), 'content');
    assert.equal(fs.fstatSync(file.fd).ino, fs.statSync(path.join(dir, 'file')).ino);
    for (const g of got.slice(9)) assert.deepEqual(g, { type: 'error', errno: os.constants.errno.EINVAL });
    // Opened: file, empty and others (the current per-blob checks do not look at a blob's owner:
    // its folder is root's and not writable by others, so only root could have put it there).
    assert.equal(openFds(), before + 3);
    for (const g of got) if (g.type === 'file') fs.closeSync(g.fd);
    assert.equal(openFds(), before, 'nothing else was left open (the fifo and the device were never opened)');
  } finally {
    fs.closeSync(dirFd);
  }
  await assert.rejects(async () => openFilesAt(-1, ['file']), TypeError);
});

test('openFilesAt: the descriptors are close-on-exec and read-only', async () => {
  const dir = hostileFolder();
  const dirFd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    const [g] = await openFilesAt(dirFd, ['file']);
    assert.equal(g!.type, 'file');
    const fd = (g as { fd: number }).fd;
    const flags = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    const f = parseInt(/flags:\s+([0-7]+)/.exec(flags)![1]!, 8);
    assert.equal(f & 0o3, fs.constants.O_RDONLY);
    assert.notEqual(f & 0o2000000, 0, 'O_CLOEXEC');
    assert.throws(() => fs.writeSync(fd, 'x'), { code: 'EBADF' });
    fs.closeSync(fd);
  } finally {
    fs.closeSync(dirFd);
  }
});

test('LocalDestination.openManyForReads: the refusals of openForReads, name by name', async () => {
  const root = tmp();
  const dest = new LocalDestination(root);
  await dest.open();
  try {
    const dir = hostileFolder();
    fs.renameSync(dir, path.join(root, 'snap'));
    const names = ['file', 'missing', 'link', 'dangling', 'dir', 'fifo', 'device', 'others'];
    const many = (await dest.openManyForReads('snap', names))!;
    const one = names.map((n) => dest.openForReads(`snap/${n}`));
    assert.deepEqual(many.map((m) => m.type), one.map((o) => o.type), 'the same outcome as openForReads, name by name');
    for (const m of many) if (m.type === 'file') fs.closeSync(m.fd);
    for (const o of one) if (o.type === 'file') o.reader.close();

    // A missing folder: every name is missing (as openForReads says of each).
    assert.deepEqual((await dest.openManyForReads('nowhere', ['a', 'b']))!.map((m) => m.type), ['missing', 'missing']);
    assert.equal(dest.openForReads('nowhere/a').type, 'missing');
    // A name that is not one component never reaches the native call.
    await assert.rejects(dest.openManyForReads('snap', ['../snap/file']), { code: 'invalid' });
  } finally {
    await dest.close();
  }
});

for (const hostile of ['a symlink to a root folder', 'a folder writable by others', 'a folder owned by another user', 'a file']) {
  test(`regression: LocalDestination.openManyForReads refuses a blob folder that is ${hostile}, as openForReads does`, async () => {
    const root = tmp();
    const elsewhere = tmp();
    fs.writeFileSync(path.join(elsewhere, 'file'), 'content');
    const dest = new LocalDestination(root);
    await dest.open();
    try {
      fs.mkdirSync(path.join(root, 'snap'), { mode: 0o700 });
      const folder = path.join(root, 'snap', 'files');
      if (hostile === 'a symlink to a root folder') fs.symlinkSync(elsewhere, folder);
      else if (hostile === 'a file') fs.writeFileSync(folder, '');
      else {
        fs.mkdirSync(folder, { mode: 0o700 });
        fs.writeFileSync(path.join(folder, 'file'), 'content');
        if (hostile === 'a folder writable by others') fs.chmodSync(folder, 0o777);
        else fs.chownSync(folder, 65534, 65534);
      }
      const before = openFds();
      await assert.rejects(dest.openManyForReads('snap/files', ['file']), (err: Error & { code?: string }) => {
        assert.ok(err.code === 'insecure' || err.code === 'invalid', `${err.code}: ${err.message}`);
        return true;
      });
      assert.throws(() => dest.openForReads('snap/files/file'));
      assert.equal(openFds(), before, 'nothing left open');
    } finally {
      await dest.close();
    }
  });
}

test('regression: a blob folder swapped for a symlink after it was checked is never followed', async () => {
  const root = tmp();
  const elsewhere = tmp();
  fs.writeFileSync(path.join(elsewhere, 'file'), 'secret');
  const dest = new LocalDestination(root);
  await dest.open();
  try {
    fs.mkdirSync(path.join(root, 'files'), { mode: 0o700 });
    fs.writeFileSync(path.join(root, 'files', 'file'), 'content');
    const first = (await dest.openManyForReads('files', ['file']))!;
    assert.equal(first[0]!.type, 'file');
    fs.closeSync((first[0] as { fd: number }).fd);
    // Checked (and remembered) above; now replaced by a link to another root folder.
    fs.rmSync(path.join(root, 'files'), { recursive: true });
    fs.symlinkSync(elsewhere, path.join(root, 'files'));
    await assert.rejects(dest.openManyForReads('files', ['file']), { code: 'insecure' });
  } finally {
    await dest.close();
  }
});

/** A snapshot folder with `count` blobs (layout.blob), blob n holding `n` as text. */
function blobSnapshot(root: string, count: number): string {
  const snap = path.join(root, 'acct', 'snap');
  for (let n = 0; n < count; n++) {
    const p = path.join(snap, layout.blob(n));
    fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o700 });
    fs.writeFileSync(p, `blob ${n}`);
  }
  return 'acct/snap';
}

const source = (n: number, size = `blob ${n}`.length): ReturnType<typeof makeEntry> => makeEntry({ kind: 'f', path: `f${n}`, size, dataRef: n });

test('DirectReads.blobDescriptors: blobs across folders, in order, each the right file', async () => {
  const root = tmp();
  const rel = blobSnapshot(root, 1100);
  const dest = new LocalDestination(root);
  await dest.open();
  try {
    const direct = new DirectReads(dest.openForReads.bind(dest), rel, 'incremental', (r) => r, dest.openManyForReads.bind(dest));
    // Out of order and across the folders files/0000 and files/0001, as an index can list them.
    const refs = [1023, 1024, 5, 1099, 0, 1050, 1051, 7];
    const before = openFds();
    const got = await direct.blobDescriptors(refs.map((n) => source(n)));
    assert.equal(got.error, null);
    assert.deepEqual(got.fds.map((fd) => fs.readFileSync(fd, 'utf8')), refs.map((n) => `blob ${n}`));
    for (const fd of got.fds) fs.closeSync(fd);
    assert.equal(openFds(), before);
  } finally {
    await dest.close();
  }
});

for (const flaw of ['missing', 'a symlink', 'a directory', 'a fifo', 'short', 'owned by another user']) {
  test(`DirectReads.blobDescriptors: a blob that is ${flaw}: the blobs before it are given, the rest closed, the failure named as one by one`, async () => {
    const root = tmp();
    const rel = blobSnapshot(root, 1030);
    const blob = path.join(root, rel, layout.blob(1025));
    if (flaw !== 'short' && flaw !== 'owned by another user') fs.rmSync(blob);
    if (flaw === 'a symlink') fs.symlinkSync(path.join(root, rel, layout.blob(3)), blob);
    if (flaw === 'a directory') fs.mkdirSync(blob);
    if (flaw === 'a fifo') execFileSync('mkfifo', [blob]);
    if (flaw === 'owned by another user') fs.chownSync(blob, 65534, 65534);
    const dest = new LocalDestination(root);
    await dest.open();
    try {
      const direct = new DirectReads(dest.openForReads.bind(dest), rel, 'incremental', (r) => `snapshot x: ${r}`, dest.openManyForReads.bind(dest));
      const refs = [1, 2, 1024, 1025, 1026, 4];
      const sources = refs.map((n) => source(n, flaw === 'short' && n === 1025 ? 100 : undefined));
      const before = openFds();
      const got = await direct.blobDescriptors(sources);
      // The same check, one by one, as before the batches.
      const one = new DirectReads(dest.openForReads.bind(dest), rel, 'incremental', (r) => `snapshot x: ${r}`);
      let oneError: Error | null = null;
      try {
        const d = one.descriptor(sources[3]!, 0);
        fs.closeSync(d!.fd);
      } catch (err) {
        oneError = err as Error;
      }
      if (flaw === 'owned by another user') {
        // Not refused today (its folder is root's only), and not by the batch either.
        assert.equal(got.error, null);
        assert.equal(oneError, null);
        assert.equal(got.fds.length, refs.length);
      } else {
        assert.ok(got.error, 'refused');
        assert.equal(got.error.message, oneError?.message);
        assert.equal(got.error instanceof SnapshotInputError, oneError instanceof SnapshotInputError);
        if (flaw === 'missing') assert.match(got.error.message, /not found on the destination/);
        else if (flaw === 'short') assert.match(got.error.message, /short/);
        else assert.match(got.error.message, /not a regular file/);
        assert.deepEqual(got.fds.map((fd) => fs.readFileSync(fd, 'utf8')), ['blob 1', 'blob 2', 'blob 1024']);
      }
      for (const fd of got.fds) fs.closeSync(fd);
      assert.equal(openFds(), before, 'the blobs after the failure were closed');
    } finally {
      await dest.close();
    }
  });
}
