/**
 * The account worker's walk lists each folder with listDir (native/list-dir.c): the entries
 * sorted by the bytes of their names, each with its lstat's fields as numbers. What the walk
 * decides from them (unchanged or not, the same inode or another, a folder or a link) must be
 * exactly what lstat says, for names with any bytes, and a folder that became a symbolic link
 * must be refused, never followed (the walk runs as the account, but reads only what lstat saw).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  fstatFields, inodeKeyOf, listDir, listDirNative, listDirWithoutAddon, lstatFields, nameAt, sameInode, statAt, type Listing, type StatFields,
} from '../server/native/list-dir.js';

const HALF = 1n << 32n;

function expected(p: Buffer): StatFields {
  const st = fs.lstatSync(p, { bigint: true });
  // Seconds rounded down (before 1970 too), nanoseconds from 0 to 999,999,999, as the kernel keeps them.
  let sec = st.mtimeNs / 1_000_000_000n;
  if (st.mtimeNs < sec * 1_000_000_000n) sec -= 1n;
  return {
    mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), size: Number(st.size),
    mtimeSec: Number(sec), mtimeNsec: Number(st.mtimeNs - sec * 1_000_000_000n), nlink: Number(st.nlink),
    devHigh: Number(st.dev / HALF), devLow: Number(st.dev % HALF), inoHigh: Number(st.ino / HALF), inoLow: Number(st.ino % HALF),
  };
}

function withFolder(body: (dir: Buffer) => void): void {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-list-dir-'));
  try {
    body(Buffer.from(d));
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
}

const child = (dir: Buffer, name: Buffer | string): Buffer => Buffer.concat([dir, Buffer.from('/'), Buffer.isBuffer(name) ? name : Buffer.from(name, 'latin1')]);

/** Names with any bytes but NUL and '/', in an order that is not the bytes' order. */
const NAMES: Buffer[] = [Buffer.from('b'), Buffer.from('a'), Buffer.from('a\nb'), Buffer.from('?'), Buffer.from('*'),
  Buffer.from([0xff, 0x41]), Buffer.from('ab'), Buffer.from('A'), Buffer.from('é'), Buffer.from([0xe9]), Buffer.from(' ')];

function fill(dir: Buffer): void {
  for (const n of NAMES) fs.writeFileSync(child(dir, n), n);
  fs.mkdirSync(child(dir, 'sub'));
  fs.symlinkSync('/etc', child(dir, 'to-etc'));
  execFileSync('mkfifo', [child(dir, 'fifo').toString('latin1')]);
  fs.linkSync(child(dir, 'a'), child(dir, 'a-again'));
}

for (const [label, list] of [['the addon', listDir], ['Node without the addon', listDirWithoutAddon]] as const) {
  test(`listDir (${label}): every entry, sorted by its bytes, with exactly lstat's fields`, { skip: label === 'the addon' && !listDirNative() }, () => {
    withFolder((dir) => {
      fill(dir);
      fs.utimesSync(child(dir, 'b'), 1_700_000_000.123456, 1_700_000_000.987654);
      // Node takes a negative time for now: touch sets 1969-12-31 23:59:58.75.
      execFileSync('touch', ['-h', '-d', '@-1.25', child(dir, 'ab').toString('latin1')]);
      const l: Listing = list(dir);
      const names = Array.from({ length: l.count }, (_, i) => Buffer.from(nameAt(l, i), 'latin1'));
      const want = [...NAMES, Buffer.from('sub'), Buffer.from('to-etc'), Buffer.from('fifo'), Buffer.from('a-again')].sort(Buffer.compare);
      assert.deepEqual(names.map((n) => n.toString('hex')), want.map((n) => n.toString('hex')), 'sorted by bytes, "." and ".." left out');
      names.forEach((n, i) => assert.deepEqual(statAt(l, i), expected(child(dir, n)), n.toString('latin1')));
      const at = (name: string): StatFields => statAt(l, names.findIndex((n) => n.equals(Buffer.from(name)))) as StatFields;
      assert.equal(at('to-etc').mode & fs.constants.S_IFMT, fs.constants.S_IFLNK, 'a symbolic link is the link, not its target');
      assert.equal(at('b').mtimeNsec, expected(child(dir, 'b')).mtimeNsec, 'nanoseconds kept');
      assert.deepEqual([at('ab').mtimeSec, at('ab').mtimeNsec], [-2, 750_000_000], 'before 1970: seconds down, nanoseconds positive');
      assert.ok(sameInode(at('a'), at('a-again')) && inodeKeyOf(at('a')) === inodeKeyOf(at('a-again')), 'two names of one inode');
      assert.ok(!sameInode(at('a'), at('b')) && inodeKeyOf(at('a')) !== inodeKeyOf(at('b')));
    });
  });

  test(`listDir (${label}): a folder that is a symbolic link is refused (ENOTDIR), never followed, one that is gone or not a folder says so`, { skip: label === 'the addon' && !listDirNative() }, () => {
    withFolder((dir) => {
      fs.mkdirSync(child(dir, 'real'));
      fs.writeFileSync(child(dir, 'real/secret'), 'x');
      fs.symlinkSync(child(dir, 'real').toString('latin1'), child(dir, 'link'));
      fs.writeFileSync(child(dir, 'file'), 'x');
      assert.throws(() => list(child(dir, 'link')), { code: 'ENOTDIR' });
      assert.throws(() => list(child(dir, 'gone')), { code: 'ENOENT' });
      assert.throws(() => list(child(dir, 'file')), { code: 'ENOTDIR' });
      assert.equal(list(child(dir, 'real')).count, 1);
    });
  });
}

test('lstatFields and fstatFields give lstat\'s and fstat\'s fields; a path holding NUL is refused', () => {
  withFolder((dir) => {
    fs.writeFileSync(child(dir, 'f'), 'content');
    fs.symlinkSync('f', child(dir, 'l'));
    assert.deepEqual(lstatFields(child(dir, 'f')), expected(child(dir, 'f')));
    assert.deepEqual(lstatFields(child(dir, 'l')), expected(child(dir, 'l')), 'not followed');
    const fd = fs.openSync(child(dir, 'f'), 'r');
    try {
      assert.deepEqual(fstatFields(fd), expected(child(dir, 'f')));
    } finally {
      fs.closeSync(fd);
    }
    assert.throws(() => lstatFields(child(dir, 'missing')), { code: 'ENOENT' });
    if (listDirNative()) {
      assert.throws(() => lstatFields(Buffer.from('/etc\0/passwd')), TypeError);
      assert.throws(() => listDir(Buffer.from('/etc\0')), TypeError);
    }
  });
});

test('an entry whose lstat failed (gone since the listing) is named by its errno', () => {
  const fields = new Float64Array(14);
  fields[1] = 1;
  fields[2] = os.constants.errno.ENOENT;
  assert.equal(statAt({ count: 1, names: Buffer.from('x'), fields }, 0), 'ENOENT');
});
