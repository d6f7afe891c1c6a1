// How a restore writes: a free name is created in place, an existing entry is replaced
// through a temporary name, an existing file that already holds the snapshot's bytes is
// kept (only its owner, mode and times are set), and nothing is ever written through an
// existing name. Each case would break silently if the faster paths took a wrong turn.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { asAccount, createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';
import { tidemarkLeftovers } from './support/tree.js';
import { validRelative } from '../server/engine/worker/restore-writer.js';

let homeRoot: string;
let account: TestAccount;
let dataDir: string;
let destDir: string;
let snapshot: string;
/** Nanoseconds that a time cut to the microsecond would lose. */
const MTIME = '2021-03-04 05:06:07.123456789 UTC';
const MTIME_NS = 1614834367123456789n;

const home = (rel: string): string => path.join(account.home, rel);
const restore = (...args: string[]): any => ok(cli(dataDir, ['restore', snapshot, ...args, '--wait']));
const leftovers = (): string[] => tidemarkLeftovers(account.home);

before(() => {
  homeRoot = makeHomeRoot();
  account = createAccount(homeRoot);
  asAccount(account, [
    'mkdir -p site/deep/er',
    'printf alpha-original > site/a.txt',
    'printf bravo > site/b.txt',
    'printf charlie > site/c.txt',
    'printf delta > site/d.txt',
    'head -c 3000000 /dev/urandom > site/big.bin',
    'for i in $(seq 1 50); do printf "file $i" > site/deep/er/f$i; done',
    'ln -s a.txt site/link-to-a',
    'chmod 0640 site/a.txt site/b.txt site/c.txt; chmod 0604 site/d.txt',
    'chmod 0750 site/deep/er',
    `touch -d '${MTIME}' site/a.txt site/b.txt site/c.txt site/d.txt site/deep/er`,
  ].join(' && '));
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  destDir = makeDestinationDir();
  ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
  ok(cli(dataDir, ['job', 'add', '--name', 'files', '--destination', 'disk', '--structure', 'incremental', '--accounts', account.username, '--items', 'files']));
  snapshot = ok(cli(dataDir, ['backup', '--job', 'files', '--wait'])).snapshots[0];
});

after(() => {
  if (account) removeAccount(account);
  for (const d of [homeRoot, dataDir, destDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

test('regression: restoring over a changed file never writes through it (a second name of the old file keeps the old bytes)', () => {
  asAccount(account, 'printf tampered > site/a.txt && ln site/a.txt a-second-name');
  const oldInode = fs.statSync(home('site/a.txt')).ino;
  const r = restore('--path', 'site/a.txt');
  assert.equal(r.files.warningCount, 0, JSON.stringify(r.files.warnings));
  assert.equal(fs.readFileSync(home('site/a.txt'), 'utf8'), 'alpha-original');
  assert.notEqual(fs.statSync(home('site/a.txt')).ino, oldInode, 'replaced by rename, not rewritten');
  assert.equal(fs.readFileSync(home('a-second-name'), 'utf8'), 'tampered');
  fs.rmSync(home('a-second-name'));
  assert.deepEqual(leftovers(), []);
});

test('an existing file with the snapshot\'s bytes is kept, and gets back its mode and nanosecond mtime', () => {
  asAccount(account, 'chmod 0600 site/b.txt && touch site/b.txt');
  const inode = fs.statSync(home('site/b.txt')).ino;
  restore('--path', 'site/b.txt');
  const st = fs.statSync(home('site/b.txt'), { bigint: true });
  assert.equal(fs.readFileSync(home('site/b.txt'), 'utf8'), 'bravo');
  assert.equal(Number(st.mode & 0o7777n), 0o640);
  assert.equal(st.mtimeNs, MTIME_NS);
  assert.equal(Number(st.ino), inode, 'not written again');
});

test('an identical file that has a second name is replaced, so the other name keeps its own mode', () => {
  asAccount(account, 'chmod 0600 site/c.txt && ln site/c.txt c-second-name');
  restore('--path', 'site/c.txt');
  assert.equal(fs.statSync(home('site/c.txt')).mode & 0o7777, 0o640);
  assert.equal(fs.statSync(home('c-second-name')).mode & 0o7777, 0o600);
  assert.equal(fs.statSync(home('site/c.txt')).nlink, 1);
  fs.rmSync(home('c-second-name'));
});

test('a symlink planted where a file was is replaced, never followed', () => {
  asAccount(account, 'printf mine > outside.txt && rm site/d.txt && ln -s ../outside.txt site/d.txt');
  const r = restore('--path', 'site/d.txt');
  assert.equal(r.files.warningCount, 0, JSON.stringify(r.files.warnings));
  assert.ok(fs.lstatSync(home('site/d.txt')).isFile());
  assert.equal(fs.readFileSync(home('site/d.txt'), 'utf8'), 'delta');
  assert.equal(fs.lstatSync(home('site/d.txt')).mode & 0o7777, 0o604);
  assert.equal(fs.readFileSync(home('outside.txt'), 'utf8'), 'mine');
  fs.rmSync(home('outside.txt'));
});

test('deleted files come back byte-exact where they were, with no temporary names left', () => {
  const big = fs.readFileSync(home('site/big.bin'));
  fs.rmSync(home('site'), { recursive: true });
  const r = restore('--path', 'site');
  assert.equal(r.files.warningCount, 0, JSON.stringify(r.files.warnings));
  assert.ok(fs.readFileSync(home('site/big.bin')).equals(big));
  assert.equal(fs.readFileSync(home('site/deep/er/f37'), 'utf8'), 'file 37');
  assert.equal(fs.readlinkSync(home('site/link-to-a')), 'a.txt');
  assert.equal(fs.statSync(home('site/a.txt')).uid, account.uid);
  assert.equal(fs.statSync(home('site/a.txt')).mode & 0o7777, 0o640);
  assert.deepEqual(leftovers(), []);
});

test('regression: a folder restored in place that its owner cannot write into gets the recorded mode and nanosecond mtime, not its own again; an ancestor such folder is left as it is', () => {
  asAccount(account, 'chmod 0500 site/deep/er && chmod 0500 site/deep');
  const ancestor = fs.lstatSync(home('site/deep'), { bigint: true });
  try {
    const r = restore('--path', 'site/deep/er');
    assert.equal(r.files.warningCount, 0, JSON.stringify(r.files.warnings));
    const st = fs.lstatSync(home('site/deep/er'), { bigint: true });
    assert.equal(Number(st.mode & 0o7777n).toString(8), '750');
    assert.equal(st.mtimeNs, MTIME_NS);
    // The real folder above the chosen path keeps its own mode and time.
    const now = fs.lstatSync(home('site/deep'), { bigint: true });
    assert.equal(Number(now.mode & 0o7777n).toString(8), '500');
    assert.equal(now.mtimeNs, ancestor.mtimeNs);
    assert.equal(fs.readFileSync(home('site/deep/er/f7'), 'utf8'), 'file 7');
  } finally {
    asAccount(account, 'chmod 0755 site/deep');
  }
});

test('regression: a damaged blob restored to a free name leaves nothing at that name', () => {
  // The blob holding "delta": root's hash check stops the restore before the file is complete.
  const blobs: string[] = [];
  const walk = (d: string): void => { for (const e of fs.readdirSync(d, { withFileTypes: true })) { const p = path.join(d, e.name); if (e.isDirectory()) walk(p); else if (e.isFile()) blobs.push(p); } };
  walk(path.join(destDir, account.username, snapshot, 'files'));
  const blob = blobs.find((b) => fs.readFileSync(b, 'utf8') === 'delta')!;
  assert.ok(blob, 'the blob of site/d.txt');
  fs.writeFileSync(blob, 'DELTA');
  try {
    fs.rmSync(home('site/d.txt'));
    const r = cli(dataDir, ['restore', snapshot, '--path', 'site/d.txt', '--wait']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr + r.stdout, /does not match its hash/);
    assert.equal(fs.existsSync(home('site/d.txt')), false);
    assert.deepEqual(leftovers(), []);
  } finally {
    fs.writeFileSync(blob, 'delta');
  }
});

test('validRelative (one scan) agrees with the rule it replaced (split on "/": no empty, ".", ".." or NUL component)', () => {
  const splitRule = (p: string): boolean => p === '' || (!p.startsWith('/') && p.split('/').every((c) => c !== '' && c !== '.' && c !== '..' && !c.includes('\0')));
  const pieces = ['a', '.', '..', '...', '.a', 'a.', '', '/', '\0', 'b/c', '..a', 'é'];
  let seed = 7;
  const next = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
  for (let i = 0; i < 5000; i++) {
    let p = '';
    for (let k = next(6); k > 0; k--) p += pieces[next(pieces.length)]! + (next(2) ? '/' : '');
    assert.equal(validRelative(p), splitRule(p), JSON.stringify(p));
  }
  for (const p of ['', 'a', 'a/b', '/a', 'a/', 'a//b', './a', 'a/..', 'a/.../b', 'a\0b']) assert.equal(validRelative(p), splitRule(p), JSON.stringify(p));
});
