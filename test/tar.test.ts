import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { makeEntry, NO_REF, type Entry } from '../server/engine/format/entry.js';
import { parseTar, tarHeaders, tarHeadersLength, tarPadding, TAR_END, type TarEvent } from '../server/engine/format/tar.js';
import type { BytePath } from '../server/util/byte-path.js';

const TAR = '/usr/bin/tar';
const T0 = 1_650_000_000;
const bytes = (...b: number[]): BytePath => Buffer.from(b).toString('latin1');
const u8 = (s: string): BytePath => Buffer.from(s, 'utf8').toString('latin1');

const NON_UTF8 = `non${bytes(0xff, 0xfe)}-utf8`;
const LONG_NAME = 'n'.repeat(251) + '.txt'; // 255 bytes
const DEEP_DIRS = Array.from({ length: 19 }, (_, i) => String(i).padStart(3, '0') + 'd'.repeat(197));
const DEEP_DIR = DEEP_DIRS.join('/');
const DEEP_FILE = `${DEEP_DIR}/${'f'.repeat(4000 - DEEP_DIR.length - 1)}`; // exactly 4000 bytes
const LONG_TARGET = 'target/'.repeat(30) + 'end'; // 213 bytes

interface Item { entry: Entry; content?: Buffer }

function items(): Item[] {
  const list: Item[] = [];
  const f = (p: BytePath, content: Buffer, more: Partial<Entry> = {}): void => {
    list.push({ entry: makeEntry({ kind: 'f', path: p, mode: 0o644, uid: 1001, gid: 1002, size: content.length, mtimeSec: T0 + list.length, ...more }), content });
  };
  const d = (p: BytePath, more: Partial<Entry> = {}): void => {
    list.push({ entry: makeEntry({ kind: 'd', path: p, mode: 0o755, uid: 1001, gid: 1002, mtimeSec: T0 - 1000 - list.length, ...more }) });
  };
  f('hardlink-a', Buffer.from('shared inode\n'));
  d('public_html');
  f('public_html/index.php', Buffer.from('<?php echo "hello"; ?>\n'));
  list.push({ entry: makeEntry({ kind: 'h', path: 'public_html/hardlink-b', link: 'hardlink-a', mode: 0o644, uid: 1001, gid: 1002, mtimeSec: T0 }) });
  d('public_html/sub dir');
  f(u8('public_html/sub dir/q?mark*star [x].txt'), Buffer.from('odd name\n'));
  f('public_html/new\nline.txt', Buffer.from('newline in name\n'));
  f(NON_UTF8, Buffer.from('latin1 name\n'));
  f(u8('ünïcödé ✓.txt'), Buffer.from('utf-8 name\n'));
  f(LONG_NAME, Buffer.from('long name\n'));
  f('empty-file', Buffer.alloc(0));
  f('one-byte', Buffer.from('x'));
  f('exactly-512', crypto.randomBytes(512));
  f('script.sh', Buffer.from('#!/bin/sh\necho hi\n'), { mode: 0o755 });
  f('big.bin', crypto.randomBytes(3 * 1024 * 1024 + 17));
  f('text.log', Buffer.from('log line\n'.repeat(20000)));
  d('shared', { mode: 0o2775 });
  f('shared/inside.txt', Buffer.from('in setgid dir\n'));
  f('secret0000', Buffer.from('mode zero\n'), { mode: 0o000 });
  f('sticky-suid', Buffer.from('special bits\n'), { mode: 0o4711 });
  f('old-file', Buffer.from('from 1969\n'), { mtimeSec: -86400 * 200 });
  f('big-owner', Buffer.from('uid above the octal field\n'), { uid: 3_000_000, gid: 2_500_000 });
  list.push({ entry: makeEntry({ kind: 'l', path: 'link-relative', link: 'public_html/index.php', mode: 0o777, mtimeSec: T0 + 50 }) });
  list.push({ entry: makeEntry({ kind: 'l', path: 'link-absolute', link: '/etc/passwd', mode: 0o777, mtimeSec: T0 + 51 }) });
  list.push({ entry: makeEntry({ kind: 'l', path: 'link-long-target', link: LONG_TARGET, mode: 0o777, mtimeSec: T0 + 52 }) });
  list.push({ entry: makeEntry({ kind: 'l', path: `link-${NON_UTF8}`, link: NON_UTF8, mode: 0o777, mtimeSec: T0 + 53 }) });
  list.push({ entry: makeEntry({ kind: 'h', path: 'hardlink-to-long', link: LONG_NAME, mode: 0o644, uid: 1001, gid: 1002, mtimeSec: T0 }) });
  let deep = '';
  for (const dir of DEEP_DIRS) {
    deep = deep ? `${deep}/${dir}` : dir;
    d(deep);
  }
  f(DEEP_FILE, Buffer.from('deep\n'));
  list.push({ entry: makeEntry({ kind: 'p', path: 'a-fifo', mode: 0o640, uid: 1001, gid: 1002, mtimeSec: T0 + 60 }) });
  d('empty-dir', { mode: 0o700 });
  return list;
}

function buildArchive(list: Item[]): { archive: Buffer; offsets: number[] } {
  const parts: Buffer[] = [];
  const offsets: number[] = [];
  let o = 0;
  const push = (b: Buffer): void => { parts.push(b); o += b.length; };
  for (const { entry, content } of list) {
    offsets.push(o);
    push(tarHeaders(entry));
    if (entry.kind === 'f') {
      push(content!);
      push(Buffer.alloc(tarPadding(entry.size)));
    }
  }
  push(TAR_END);
  return { archive: Buffer.concat(parts), offsets };
}

async function* chunked(b: Buffer, sizes: () => number): AsyncGenerator<Buffer> {
  for (let o = 0; o < b.length;) {
    const n = Math.max(1, sizes());
    yield b.subarray(o, o + n);
    o += n;
  }
}

interface Parsed { entry: Entry; offset: number; content: Buffer | null }

async function collect(source: AsyncIterable<Buffer>): Promise<Parsed[]> {
  const out: Parsed[] = [];
  let parts: Buffer[] | null = null;
  for await (const ev of parseTar(source)) {
    if (ev.type === 'entry') {
      assert.equal(parts, null, 'an entry began before the previous content ended');
      out.push({ entry: ev.entry, offset: ev.offset, content: null });
      if (ev.entry.kind === 'f') parts = [];
    } else if (ev.type === 'data') {
      assert.ok(parts, 'data outside a file');
      parts.push(Buffer.from(ev.chunk));
    } else {
      assert.ok(parts, 'data-end outside a file');
      out[out.length - 1]!.content = Buffer.concat(parts);
      parts = null;
    }
  }
  assert.equal(parts, null, 'content never ended');
  return out;
}

const abs = (root: string, rel: BytePath): Buffer => Buffer.concat([Buffer.from(root + '/'), Buffer.from(rel, 'latin1')]);

function run(args: string[], opts: { input?: Buffer; env?: NodeJS.ProcessEnv } = {}): { stdout: Buffer; stderr: string; status: number | null } {
  const r = spawnSync(TAR, args, { input: opts.input, env: { ...process.env, ...opts.env }, maxBuffer: 256 << 20 });
  return { stdout: r.stdout, stderr: r.stderr.toString(), status: r.status };
}

let tmp: string;
before(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-tar-')); });
after(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

describe('tarHeaders -> GNU tar', () => {
  const list = items();
  const { archive, offsets } = buildArchive(list);

  test('GNU tar lists the archive without complaint', () => {
    const file = path.join(tmp, 'ours.tar');
    fs.writeFileSync(file, archive);
    const r = run(['-tf', file, '--quoting-style=literal']);
    assert.equal(r.stderr, '');
    assert.equal(r.status, 0);
    const names = r.stdout.toString('latin1');
    for (const { entry } of list) {
      assert.ok(names.includes(entry.kind === 'd' ? `${entry.path}/` : entry.path), `listed: ${JSON.stringify(entry.path.slice(0, 60))}`);
    }
    const verbose = run(['-tvf', file, '--numeric-owner']);
    assert.equal(verbose.status, 0);
    assert.match(verbose.stdout.toString('latin1'), /3000000\/2500000/);
  });

  test('GNU tar extracts exact bytes, names, links, modes, owners and mtimes', () => {
    const file = path.join(tmp, 'ours.tar');
    fs.writeFileSync(file, archive);
    const dest = fs.mkdtempSync(path.join(tmp, 'x-'));
    const r = run(['-xf', file, '-C', dest, '--same-permissions', '--same-owner', '--numeric-owner']);
    // The only complaint allowed is the warning about the 1969 time stamp (which it still sets).
    assert.equal(r.stderr.replace(/^.*old-file: implausibly old time stamp.*\n/m, ''), '');
    assert.equal(r.status, 0);
    for (const { entry, content } of list) {
      const p = abs(dest, entry.path);
      const st = fs.lstatSync(p);
      const what = JSON.stringify(entry.path.slice(0, 60));
      if (entry.kind === 'f') {
        assert.ok(st.isFile(), what);
        assert.ok(fs.readFileSync(p).equals(content!), `content of ${what}`);
      } else if (entry.kind === 'd') {
        assert.ok(st.isDirectory(), what);
      } else if (entry.kind === 'l') {
        assert.ok(st.isSymbolicLink(), what);
        assert.equal(fs.readlinkSync(p, { encoding: 'buffer' }).toString('latin1'), entry.link, `target of ${what}`);
        continue;
      } else if (entry.kind === 'h') {
        assert.equal(st.ino, fs.lstatSync(abs(dest, entry.link)).ino, `hard link ${what}`);
        continue;
      } else if (entry.kind === 'p') {
        assert.ok(st.isFIFO(), what);
      }
      assert.equal(st.mode & 0o7777, entry.mode, `mode of ${what}`);
      assert.equal(st.uid, entry.uid, `uid of ${what}`);
      assert.equal(st.gid, entry.gid, `gid of ${what}`);
      assert.equal(Math.floor(st.mtimeMs / 1000), entry.mtimeSec, `mtime of ${what}`);
    }
  });

  test('parseTar reads our archive back exactly, in any chunking', async () => {
    for (const sizes of [() => archive.length, () => 512, () => 1 + Math.floor(Math.random() * 1500), () => 1 + Math.floor(Math.random() * 7), () => 70_000]) {
      // Byte-sized chunks only up to the big files (they would just take long).
      const tiny = sizes() < 8;
      const end = tiny ? offsets[list.findIndex((x) => x.entry.path === 'big.bin')]! : archive.length;
      const parsed = await collect(chunked(tiny ? Buffer.concat([archive.subarray(0, end), TAR_END]) : archive, sizes));
      if (tiny) parsed.push(...(await collect(chunked(archive, () => archive.length))).slice(parsed.length));
      assert.equal(parsed.length, list.length);
      parsed.forEach((p, i) => {
        const { entry, content } = list[i]!;
        const expected: Entry = { ...entry, size: entry.kind === 'f' ? entry.size : 0, dataRef: entry.kind === 'f' ? offsets[i]! : NO_REF };
        assert.deepEqual(p.entry, expected);
        assert.equal(p.offset, offsets[i]);
        if (entry.kind === 'f') assert.ok(p.content!.equals(content!), `content of ${entry.path.slice(0, 40)}`);
        else assert.equal(p.content, null);
        // Writing the parsed entry again gives the same header bytes.
        const h = tarHeaders(p.entry);
        assert.ok(h.equals(archive.subarray(offsets[i]!, offsets[i]! + h.length)), 'same header bytes');
      });
    }
  });

  test('content chunks are views of the incoming chunks, not copies', async () => {
    const big = list.findIndex((x) => x.entry.path === 'big.bin');
    const source = archive.subarray(offsets[big]!);
    for await (const ev of parseTar(chunked(source, () => 256 * 1024))) {
      if (ev.type === 'data') { assert.equal(ev.chunk.buffer, archive.buffer); break; }
    }
  });

  test('L and K blocks: long names and long link targets', () => {
    const long = tarHeaders(makeEntry({ kind: 'f', path: LONG_NAME, size: 0 }));
    assert.equal(long.length, 512 * 3); // L header, 256 bytes of name + NUL padded, header
    assert.equal(long.toString('latin1', 0, 13), '././@LongLink');
    assert.equal(String.fromCharCode(long[156]!), 'L');
    assert.equal(long.toString('latin1', 512, 512 + 256), LONG_NAME + '\0');
    const both = tarHeaders(makeEntry({ kind: 'h', path: DEEP_FILE, link: LONG_NAME }));
    assert.equal(String.fromCharCode(both[156]!), 'L');
    const k = 512 + 4001 + tarPadding(4001);
    assert.equal(String.fromCharCode(both[k + 156]!), 'K');
    assert.equal(both.length, k + 512 + 512 + 512);
    const exactly100 = tarHeaders(makeEntry({ kind: 'f', path: 'e'.repeat(100) }));
    assert.equal(exactly100.length, 512);
    const dir100 = tarHeaders(makeEntry({ kind: 'd', path: 'e'.repeat(100) })); // 101 with the '/'
    assert.equal(dir100.length, 512 * 3);
  });
});

describe('GNU tar -> parseTar', () => {
  let root: string;
  const nsecs = new Map<string, number>();

  before(() => {
    root = fs.mkdtempSync(path.join(tmp, 'tree-'));
    const list = items().filter((x) => x.entry.kind !== 'h');
    for (const { entry, content } of list) {
      const p = abs(root, entry.path);
      if (entry.kind === 'd') fs.mkdirSync(p, { recursive: true });
      else if (entry.kind === 'f') fs.writeFileSync(p, content!);
      else if (entry.kind === 'l') fs.symlinkSync(Buffer.from(entry.link, 'latin1'), p);
      else if (entry.kind === 'p') assert.equal(spawnSync('mkfifo', [p.toString()]).status, 0);
    }
    fs.linkSync(abs(root, 'hardlink-a'), abs(root, 'public_html/hardlink-b'));
    // Deepest first, so that setting a directory's time is not undone by its children.
    for (const { entry } of [...list].reverse()) {
      const p = abs(root, entry.path);
      if (entry.kind !== 'l') fs.chmodSync(p, entry.mode);
      fs.lchownSync(p, entry.uid, entry.gid);
      const t = entry.mtimeSec + 0.5;
      if (entry.kind === 'l') fs.lutimesSync(p, t, t); else fs.utimesSync(p, t, t);
      nsecs.set(entry.path, 500_000_000);
    }
  });

  for (const format of ['gnu', 'pax'] as const) {
    test(`tar --format=${format} archive parses to the tree`, async () => {
      const file = path.join(tmp, `gnu-${format}.tar`);
      const r = run(['--format=' + format, '--sort=name', '-cf', file, '-C', root, '.'], { env: { LC_ALL: 'C' } });
      assert.equal(r.status, 0, r.stderr);
      const archive = fs.readFileSync(file);
      const parsed = await collect(fs.createReadStream(file, { highWaterMark: 1000 }) as AsyncIterable<Buffer>);
      const again = await collect(chunked(archive, () => 1 + Math.floor(Math.random() * 3000)));
      assert.deepEqual(again, parsed);
      const seenInode = new Map<bigint, string>();
      let hardLinks = 0;
      for (const p of parsed) {
        const e = p.entry;
        assert.ok(e.path === '.' || e.path.startsWith('./'), JSON.stringify(e.path));
        const rel = e.path === '.' ? '' : e.path.slice(2);
        const diskPath = rel === '' ? Buffer.from(root) : abs(root, rel);
        const st = fs.lstatSync(diskPath, { bigint: true });
        const what = JSON.stringify(rel.slice(0, 60));
        assert.equal(e.mode, Number(st.mode) & 0o7777, `mode of ${what}`);
        assert.equal(e.uid, Number(st.uid), `uid of ${what}`);
        assert.equal(e.gid, Number(st.gid), `gid of ${what}`);
        assert.equal(e.mtimeSec, Number(st.mtimeNs / 1_000_000_000n), `mtime of ${what}`);
        assert.equal(e.mtimeNsec, format === 'pax' ? Number(st.mtimeNs % 1_000_000_000n) : 0, `mtime nsec of ${what}`);
        if (e.kind === 'h') {
          hardLinks++;
          assert.equal(e.link, seenInode.get(st.ino), `hard link target of ${what}`);
          continue;
        }
        if (st.isFile()) seenInode.set(st.ino, e.path);
        if (st.isFile()) {
          assert.equal(e.kind, 'f', what);
          assert.equal(e.size, Number(st.size));
          assert.ok(p.content!.equals(fs.readFileSync(diskPath)), `content of ${what}`);
          assert.equal(e.dataRef, p.offset);
        } else if (st.isDirectory()) {
          assert.equal(e.kind, 'd', what);
        } else if (st.isSymbolicLink()) {
          assert.equal(e.kind, 'l', what);
          assert.equal(e.link, fs.readlinkSync(diskPath, { encoding: 'buffer' }).toString('latin1'));
        } else if (st.isFIFO()) {
          assert.equal(e.kind, 'p', what);
        } else {
          assert.fail(`unexpected entry ${what}`);
        }
      }
      assert.equal(hardLinks, 1);
      // Every entry of the tree is there.
      const count = Number(spawnSync('sh', ['-c', `find "${root}" -printf . | wc -c`]).stdout.toString().trim());
      assert.equal(parsed.length, count);
      // The offsets point at the first header of each entry (L, K and PAX blocks included).
      for (const p of parsed) {
        const first = await parseTar(chunked(archive.subarray(p.offset), () => 4096)).next();
        const ev = first.value as TarEvent;
        assert.equal(ev.type, 'entry');
        if (ev.type === 'entry') assert.deepEqual({ ...ev.entry, dataRef: 0 }, { ...p.entry, dataRef: 0 });
      }
    });
  }

  test('PAX records override the header: path, linkpath, size, fractional and negative mtime', async () => {
    const rec = (k: string, v: string): string => {
      let len = k.length + v.length + 3;
      len += String(len).length;
      if (`${len} ${k}=${v}\n`.length !== len) len++;
      return `${len} ${k}=${v}\n`;
    };
    const name = 'p'.repeat(300) + bytes(0xff);
    const data = Buffer.from(rec('path', name) + rec('mtime', '-1.25') + rec('size', '5'), 'latin1');
    const paxHeader = tarHeaders(makeEntry({ kind: 'f', path: 'PaxHeaders/x', size: data.length }));
    paxHeader[156] = 0x78; // 'x'
    // recompute the checksum after changing the type
    paxHeader.fill(0x20, 148, 156);
    let sum = 0;
    for (const c of paxHeader) sum += c;
    paxHeader.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
    const body = tarHeaders(makeEntry({ kind: 'f', path: 'short', size: 0 }));
    const archive = Buffer.concat([paxHeader, data, Buffer.alloc(tarPadding(data.length)), body, Buffer.from('hello'), Buffer.alloc(507), TAR_END]);
    const parsed = await collect(chunked(archive, () => 100));
    assert.equal(parsed.length, 1);
    const e = parsed[0]!.entry;
    assert.equal(e.path, name);
    assert.equal(e.size, 5);
    assert.equal(e.mtimeSec, -2);
    assert.equal(e.mtimeNsec, 750_000_000);
    assert.equal(parsed[0]!.offset, 0);
    assert.equal(parsed[0]!.content!.toString(), 'hello');
  });
});

describe('base-256 numbers', () => {
  test('a 9 GiB size, big ids and a negative mtime round-trip', async () => {
    const entry = makeEntry({ kind: 'f', path: 'huge.img', mode: 0o600, size: 9 * 1024 ** 3, uid: 2 ** 31, gid: 3_000_000, mtimeSec: -1_000_000_000 });
    const h = tarHeaders(entry);
    assert.equal(h.length, 512);
    assert.equal(h[124], 0x80);
    assert.equal(h.readUIntBE(130, 6), 9 * 1024 ** 3);
    assert.equal(h[108], 0x80);
    assert.equal(h[136], 0xff);
    const first = await parseTar((async function* () { yield h; })()).next();
    const ev = first.value as TarEvent;
    assert.equal(ev.type, 'entry');
    if (ev.type === 'entry') assert.deepEqual(ev.entry, { ...entry, dataRef: 0 });
    // GNU tar agrees (it then complains that the 9 GiB of content are missing).
    const r = run(['-tvf', '-', '--numeric-owner'], { input: h });
    assert.match(r.stdout.toString(), new RegExp(`2147483648/3000000 +${9 * 1024 ** 3} 1938-`));
  });

  test('octal up to the field limit, base-256 from 8 GiB', () => {
    const at = (size: number): Buffer => tarHeaders(makeEntry({ kind: 'f', path: 'x', size }));
    assert.equal(at(8 * 1024 ** 3 - 1).toString('latin1', 124, 136), '77777777777\0');
    assert.equal(at(8 * 1024 ** 3)[124], 0x80);
  });
});

describe('errors', () => {
  const { archive } = buildArchive(items().slice(0, 3));

  test('a bad checksum is refused', async () => {
    const bad = Buffer.from(archive);
    bad[10] = bad[10]! ^ 1;
    await assert.rejects(collect(chunked(bad, () => 4096)), /checksum/);
  });

  test('a truncated archive is refused', async () => {
    await assert.rejects(collect(chunked(archive.subarray(0, 700), () => 4096)), /truncated/);
    await assert.rejects(collect(chunked(archive.subarray(0, archive.length - 1024), () => 4096)), /truncated/);
  });

  test('an empty stream is an empty archive; it stops at the end blocks', async () => {
    assert.deepEqual(await collect(chunked(Buffer.alloc(0), () => 1)), []);
    const trailing = Buffer.concat([archive, Buffer.from('garbage after the end')]);
    assert.equal((await collect(chunked(trailing, () => 4096))).length, 3);
  });
});

test('tarHeadersLength is the length of tarHeaders for every kind of name (short, at 100 bytes, GNU long names and links, the root)', () => {
  const names = ['', 'a', 'x'.repeat(99), 'x'.repeat(100), 'x'.repeat(101), `${'d/'.repeat(300)}f`, 'caf\u00e9'];
  for (const name of names) {
    for (const kind of ['f', 'd', 'l', 'h', 'p'] as const) {
      for (const link of ['t', 'y'.repeat(100), 'y'.repeat(101), 'z'.repeat(1000)]) {
        const e = makeEntry({ kind, path: name, size: kind === 'f' ? 10 : 0, link: kind === 'l' || kind === 'h' ? link : '' });
        assert.equal(tarHeadersLength(e), tarHeaders(e).length, `${kind} ${name.length} ${link.length}`);
      }
    }
  }
  assert.throws(() => tarHeadersLength(makeEntry({ kind: 'f', path: 'a\0b' })), /cannot be stored in tar/);
});
