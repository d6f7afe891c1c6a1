// A restore into a new folder from a local incremental or archive snapshot: root hands the
// account's writer read-only descriptors of the stored files (native/pass-fds.c,
// restore-descriptors.ts) and the writer reads, checks and writes the content itself
// (restoreFileFrom). Only regular files are ever handed over, a damaged or short copy never
// gets a name, and the restore names the damage as before.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { asAccount, createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';
import { recvWithFds, sendWithFds, socketPair } from '../server/native/pass-fds.js';
import { restoreFileFromOffLoop } from '../server/native/restore-file.js';
import zlib from 'node:zlib';
import { layout } from '../server/engine/snapshot-layout.js';
import { tarHeaders } from '../server/engine/format/tar.js';
import { makeEntry, parseEntryStream, type Entry } from '../server/engine/format/entry.js';
import { NewFiles } from '../server/engine/worker/new-files.js';

async function readIndexFile(file: string): Promise<Entry[]> {
  const out: Entry[] = [];
  const raw = zlib.gunzipSync(fs.readFileSync(file));
  for await (const ev of parseEntryStream((async function* () { yield raw; })())) if (ev.type === 'entry') out.push(ev.entry);
  return out;
}

const sha = (b: Buffer): Buffer => crypto.createHash('sha256').update(b).digest();
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
  for (const st of ['incremental', 'archive']) {
    fs.mkdirSync(path.join(destDir, st), { mode: 0o700 });
    ok(cli(dataDir, ['destination', 'add', '--name', st, '--type', 'local', '--path', path.join(destDir, st)]));
    ok(cli(dataDir, ['job', 'add', '--name', st, '--destination', st, '--structure', st, '--accounts', account.username, '--items', 'files']));
    snapshots[st] = ok(cli(dataDir, ['backup', '--job', st, '--wait'])).snapshots[0];
  }
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
    const files = NewFiles.create({
      abs: (rel) => Buffer.from(path.join(dir, rel)),
      owner: () => null,
      done: (e) => done.push(e.path),
      warn: (rel, m) => assert.fail(`${rel}: ${m}`),
      ownerWarning: () => undefined,
      taken: () => assert.fail('no gathered file here'),
      takenFrom: (e, fd, offset) => {
        const b = Buffer.alloc(e.size);
        fs.readSync(fd, b, 0, e.size, offset);
        taken.push(`${e.path}=${b.toString()}`);
      },
      checkHash: false,
    })!;
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
