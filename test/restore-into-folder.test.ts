// A restore into a new folder writes its files by pool jobs, several at a time (new-files.ts,
// native/restore-file.c). Completing in any order must not change what is restored: every
// file's bytes, mode, owner and nanosecond mtime, hard links, folders' own modes; a damaged
// file is never left behind; a link at a target name is never followed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { asAccount, createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { backupEachStructure, cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';
import { runWriterOnStream } from './support/writer-stream.js';
import { restoreNewFileOffLoop } from '../server/native/restore-file.js';
import { GATHER_MAX, NewFiles } from '../server/engine/worker/new-files.js';
import { encodeEntry, makeEntry, type Entry } from '../server/engine/format/entry.js';

let homeRoot: string;
let account: TestAccount;
let dataDir: string;
let destDir: string;
const snapshots: Record<string, string> = {};

before(() => {
  homeRoot = makeHomeRoot();
  account = createAccount(homeRoot);
  const script = [
    'mkdir -p site/ro site/many',
    // Many small files of every size class, with their own modes and nanosecond times.
    'for i in $(seq 1 400); do head -c $(( (i * 7919) % 70000 )) /dev/urandom > site/many/f$i; done',
    'for i in $(seq 1 400 7); do chmod 0$(( 400 + (i % 3) * 111 )) site/many/f$i; done',
    'for i in $(seq 1 400 5); do touch -d "2020-01-0$(( 1 + i % 9 )) 01:02:03.$(printf %09d $(( i * 1234567 )))" site/many/f$i; done',
    ': > site/empty',
    `head -c ${GATHER_MAX + 12345} /dev/urandom > site/large.bin`,
    `head -c ${GATHER_MAX} /dev/urandom > site/exactly-gathered.bin`,
    'ln site/many/f3 site/hard-to-f3',
    'ln -s many/f1 site/link',
    'printf inside > site/ro/file; chmod 0555 site/ro',
    'chmod 0751 site/many',
    'touch -d "2019-05-06 07:08:09.987654321" site/many',
  ].join(' && ');
  asAccount(account, script);
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  destDir = makeDestinationDir();
  Object.assign(snapshots, backupEachStructure(dataDir, destDir, account.username, ['incremental', 'archive', 'compressed']));
});

after(() => {
  if (account) removeAccount(account);
  for (const d of [homeRoot, dataDir, destDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

/** Every entry below `root`: type, mode, owner, mtime in ns, size, content hash or link target, inode group. */
function describe(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const inodes = new Map<bigint, string>();
  const walk = (rel: string): void => {
    const p = path.join(root, rel);
    const st = fs.lstatSync(p, { bigint: true });
    let what = '';
    if (st.isSymbolicLink()) what = `link ${fs.readlinkSync(p)}`;
    else if (st.isFile()) {
      const first = inodes.get(st.ino);
      if (!first) inodes.set(st.ino, rel);
      what = `file ${fs.readFileSync(p).toString('base64').length}:${fs.readFileSync(p).subarray(0, 64).toString('hex')}:${fs.readFileSync(p).subarray(-64).toString('hex')} same-as ${first ?? rel}`;
    } else if (st.isDirectory()) what = 'dir';
    out.set(rel, `${what} mode ${(st.mode & 0o7777n).toString(8)} uid ${st.uid} gid ${st.gid} mtime ${st.isSymbolicLink() ? '-' : st.mtimeNs} size ${st.isDirectory() ? '-' : st.size}`);
    if (st.isDirectory()) for (const n of fs.readdirSync(p).sort()) walk(rel === '' ? n : `${rel}/${n}`);
  };
  walk('');
  return out;
}

for (const st of ['incremental', 'archive', 'compressed']) {
  for (const who of ['root', 'the account']) {
    test(`into a new folder (${st}, as ${who}): every file's bytes, mode, owner and nanosecond mtime, hard links and folder modes as in the home`, () => {
      const r = ok(cli(dataDir, [...(who === 'root' ? [] : ['--as-account', account.username]), 'restore', snapshots[st]!, '--destination', st, '--path', 'site', '--into-folder', '--wait']));
      assert.equal(r.files.warningCount, 0, JSON.stringify(r.files.warnings));
      const folder = path.join(account.home, r.folder);
      const want = describe(path.join(account.home, 'site'));
      const got = describe(path.join(folder, 'site'));
      assert.equal(got.size, want.size);
      for (const [rel, d] of want) assert.equal(got.get(rel), d, rel);
      assert.equal(r.files.files, [...want.values()].filter((d) => d.startsWith('file')).length);
      // Whole contents too, not only their ends.
      for (const [rel, d] of want) if (d.startsWith('file')) assert.ok(fs.readFileSync(path.join(folder, 'site', rel)).equals(fs.readFileSync(path.join(account.home, 'site', rel))), rel);
      fs.chmodSync(path.join(folder, 'site/ro'), 0o755);
      fs.rmSync(folder, { recursive: true });
    });
  }
}

test('regression: a damaged blob restored into a new folder leaves no file of it, and the message names the folder', () => {
  const blobs: string[] = [];
  const walk = (d: string): void => { for (const e of fs.readdirSync(d, { withFileTypes: true })) { const p = path.join(d, e.name); if (e.isDirectory()) walk(p); else if (e.isFile()) blobs.push(p); } };
  walk(path.join(destDir, 'incremental', account.username, snapshots.incremental!, 'files'));
  const want = fs.readFileSync(path.join(account.home, 'site/ro/file'));
  const blob = blobs.find((b) => fs.readFileSync(b).equals(want))!;
  assert.ok(blob, 'the blob of site/ro/file');
  fs.writeFileSync(blob, 'INSIDE');
  try {
    const r = cli(dataDir, ['restore', snapshots.incremental!, '--destination', 'incremental', '--path', 'site', '--into-folder', '--wait']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr + r.stdout, /does not match its hash/);
    const folder = /in the folder (tidemark-restore-[^ )]+) of the home/.exec(r.stderr + r.stdout)?.[1];
    assert.ok(folder, r.stderr + r.stdout);
    assert.equal(fs.existsSync(path.join(account.home, folder, 'site/ro/file')), false);
    fs.rmSync(path.join(account.home, folder), { recursive: true, force: true });
  } finally {
    fs.writeFileSync(blob, want);
  }
});

test('restoreNewFile never follows or overwrites what is at the name, and removes nothing it did not create', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-restore-file-'));
  try {
    const outside = path.join(dir, 'outside');
    fs.writeFileSync(outside, 'keep');
    fs.symlinkSync(outside, path.join(dir, 'planted'));
    const err = await restoreNewFileOffLoop(Buffer.from(path.join(dir, 'planted')), [Buffer.from('new')], 0o644, -1, -1, 1, 2)!.then(() => null, (e: NodeJS.ErrnoException & { stage?: string }) => e);
    assert.equal(err?.code, 'EEXIST');
    assert.equal(err?.stage, 'open');
    assert.equal(fs.readFileSync(outside, 'utf8'), 'keep');
    assert.equal(fs.readlinkSync(path.join(dir, 'planted')), outside);
    const made = path.join(dir, 'made');
    assert.equal(await restoreNewFileOffLoop(Buffer.from(made), [Buffer.from('ab'), Buffer.alloc(0), Buffer.from('cd')], 0o4751, -1, -1, 1614834367, 123456789), 0);
    const st = fs.statSync(made, { bigint: true });
    assert.equal(fs.readFileSync(made, 'utf8'), 'abcd');
    assert.equal(Number(st.mode & 0o7777n), 0o4751);
    assert.equal(st.mtimeNs, 1614834367123456789n);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('NewFiles: jobs complete in any order, a taken name goes to the fallback, a gathered file that never completes is never created', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-new-files-'));
  try {
    const done: string[] = [];
    const taken: string[] = [];
    const warnings: string[] = [];
    const files = NewFiles.create({
      abs: (rel) => Buffer.from(path.join(dir, rel)),
      owner: () => null,
      done: (e) => done.push(e.path),
      warn: (rel, m) => warnings.push(`${rel}: ${m}`),
      ownerWarning: () => undefined,
      taken: (e) => taken.push(e.path),
      takenFrom: (e) => taken.push(e.path),
      checkHash: false,
    })!;
    assert.ok(files);
    fs.symlinkSync('/etc/passwd', path.join(dir, 'f7'));
    const entries: Entry[] = [];
    for (let i = 0; i < 100; i++) {
      const e = makeEntry({ kind: 'f', path: `f${i}`, mode: 0o600 + (i % 8), size: i * 100, mtimeSec: 1000 + i, mtimeNsec: i * 1000003 });
      entries.push(e);
      assert.ok(files.takes(e, true));
      // Content in several pieces, as the stream brings it.
      const content = Buffer.alloc(e.size, i);
      for (let o = 0; o < content.length; o += 333) files.add(content.subarray(o, o + 333));
      await files.submit();
    }
    await files.drain();
    files.throwIfFailed();
    assert.ok(files.takes(makeEntry({ kind: 'f', path: 'never', size: 10 }), true));
    files.add(Buffer.from('12345'));
    files.abandon();
    await files.drain();
    assert.deepEqual(taken, ['f7']);
    assert.deepEqual(warnings, []);
    assert.equal(done.length, 99);
    assert.equal(fs.existsSync(path.join(dir, 'never')), false);
    assert.equal(fs.readlinkSync(path.join(dir, 'f7')), '/etc/passwd');
    for (const e of entries) {
      if (e.path === 'f7') continue;
      const p = path.join(dir, e.path);
      const st = fs.statSync(p, { bigint: true });
      assert.ok(fs.readFileSync(p).equals(Buffer.alloc(e.size, Number(e.path.slice(1)))), e.path);
      assert.equal(Number(st.mode & 0o7777n), e.mode, e.path);
      assert.equal(st.mtimeNs, BigInt(e.mtimeSec) * 1_000_000_000n + BigInt(e.mtimeNsec), e.path);
    }
    assert.equal(files.takes(makeEntry({ kind: 'f', path: 'big', size: GATHER_MAX + 1 }), true), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the writer into a new folder: a folder whose name is taken by a file or a symlink written before it becomes a real folder, nothing is followed, modes and times are the stream\'s', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-writer-dirs-'));
  try {
    const outside = path.join(dir, 'outside');
    fs.mkdirSync(outside);
    const records: Buffer[] = [];
    const file = (p: string, content: string, mode = 0o640): void => {
      records.push(encodeEntry(makeEntry({ kind: 'f', path: p, mode, size: content.length, mtimeSec: 1600000000, mtimeNsec: 5 }), true), Buffer.from(content));
    };
    const folder = (p: string, mode: number, sec: number): void => { records.push(encodeEntry(makeEntry({ kind: 'd', path: p, mode, mtimeSec: sec, mtimeNsec: 123456789 }))); };
    folder('', 0o751, 1500000000);
    folder('fresh', 0o750, 1500000001);
    folder('fresh/deeper', 0o500, 1500000002);
    file('fresh/deeper/f', 'in fresh');
    // A file, then a folder at its name: the folder's mkdir finds the name taken.
    file('was-file', 'first a file');
    folder('was-file', 0o711, 1500000003);
    file('was-file/inner', 'inside');
    // A symlink to a folder outside, then a folder at its name: replaced, never followed.
    records.push(encodeEntry(makeEntry({ kind: 'l', path: 'was-link', link: outside, mtimeSec: 1600000000 })));
    folder('was-link', 0o755, 1500000004);
    file('was-link/inner', 'not outside');
    const { home, result } = runWriterOnStream(dir, Buffer.concat(records), 'new');
    assert.equal(result.warningCount, 0, JSON.stringify(result.warnings));
    const base = path.join(home, 'new');
    assert.deepEqual(fs.readdirSync(outside), [], 'nothing written through the symlink');
    assert.equal(fs.readFileSync(path.join(base, 'fresh/deeper/f'), 'utf8'), 'in fresh');
    assert.equal(fs.readFileSync(path.join(base, 'was-file/inner'), 'utf8'), 'inside');
    assert.equal(fs.readFileSync(path.join(base, 'was-link/inner'), 'utf8'), 'not outside');
    const want: [string, number, number][] = [['', 0o751, 1500000000], ['fresh', 0o750, 1500000001], ['fresh/deeper', 0o500, 1500000002], ['was-file', 0o711, 1500000003], ['was-link', 0o755, 1500000004]];
    for (const [rel, mode, sec] of want) {
      const st = fs.lstatSync(path.join(base, rel), { bigint: true });
      assert.ok(st.isDirectory(), rel);
      assert.equal(Number(st.mode & 0o7777n), mode, rel);
      assert.equal(st.mtimeNs, BigInt(sec) * 1_000_000_000n + 123456789n, rel);
    }
    // The folders this restore made: fresh, fresh/deeper, and was-file and was-link, which
    // replaced a file and a symlink (ensureDir's lstat: what is at a name counts as a folder
    // only when it is a real one; fs.existsSync, used before, answered true for the file and
    // for the symlink to a folder, so they were not counted: 2 here). The top existed.
    assert.equal(result.directories, 4);
    assert.equal(result.files, 4);
  } finally {
    spawnSync('chmod', ['-R', 'u+rwx', dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
