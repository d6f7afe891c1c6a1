import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import crypto from 'node:crypto';
import { encodeEntry, EntryScanner, fileFieldsOf, makeEntry, noticeRecord, parseEntryStream, type Entry, type StreamEvent } from '../server/engine/format/entry.js';
import { IndexValidator } from '../server/engine/snapshot-index.js';
import { isSafeRelative } from '../server/engine/untrusted-input.js';

/**
 * Index records are parsed a chunk at a time (EntryScanner) instead of a promise per record,
 * the account worker reads only a file record's compared fields (fileFieldsOf), and the index
 * checks keep one map of the paths seen: the same events, fields and verdicts as before,
 * wherever the chunks are cut.
 */

const ODD = Buffer.from([0x6f, 0xff, 0x0a, 0x80]).toString('latin1');

function records(): { entries: Entry[]; bytes: Buffer } {
  const entries: Entry[] = [
    makeEntry({ kind: 'd', path: '', mode: 0o755, mtimeSec: 1 }),
    makeEntry({ kind: 'd', path: 'a', mode: 0o700, mtimeSec: 2, mtimeNsec: 999999999 }),
    makeEntry({ kind: 'f', path: 'a/x', size: 12345678901, mtimeSec: 1700000000, mtimeNsec: 123456789, dataRef: 4294967296, hash: crypto.randomBytes(32) }),
    makeEntry({ kind: 'f', path: `a/${ODD}\n?*`, size: 0, mtimeSec: -5, dataRef: -1 }),
    makeEntry({ kind: 'l', path: 'a/link', link: '../../etc/passwd' }),
    makeEntry({ kind: 'h', path: 'a/hard', link: 'a/x' }),
    makeEntry({ kind: 'p', path: 'a/fifo', mode: 0o600 }),
  ];
  for (let i = 0; i < 300; i++) entries.push(makeEntry({ kind: 'f', path: `a/f${i}`, size: i, mtimeSec: i, mtimeNsec: i * 7, dataRef: i, hash: crypto.randomBytes(32) }));
  return { entries, bytes: Buffer.concat(entries.map((e) => encodeEntry(e))) };
}

/** `bytes` cut into pieces at pseudo-random places (some of 1 byte, some inside a record's length). */
function cut(bytes: Buffer, seed: number): Buffer[] {
  const out: Buffer[] = [];
  let s = seed;
  for (let o = 0; o < bytes.length;) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const n = 1 + (s % 97);
    out.push(bytes.subarray(o, o + n));
    o += n;
  }
  return out;
}

test('the scanner gives the same events as the stream parser, wherever the chunks are cut, content included', async () => {
  const { bytes: index } = records();
  const content = crypto.randomBytes(5000);
  const stream = Buffer.concat([index, encodeEntry(makeEntry({ kind: 'f', path: 'c', size: content.length }), true), content,
    encodeEntry(makeEntry({ kind: 'f', path: 'empty', size: 0 }), true), noticeRecord('S', 'b', 'cannot read: EACCES'), noticeRecord('E', '', '')]);
  const norm = (evs: StreamEvent[]): string => JSON.stringify(evs.map((e) => (e.type === 'data' ? { type: 'data', hex: e.chunk.toString('hex') } : e)));
  // Data pieces may be cut differently: compare the content joined.
  const joinData = (evs: StreamEvent[]): StreamEvent[] => {
    const out: StreamEvent[] = [];
    for (const e of evs) {
      const last = out.at(-1);
      if (e.type === 'data' && last?.type === 'data') out[out.length - 1] = { type: 'data', chunk: Buffer.concat([last.chunk, e.chunk]) };
      else out.push(e);
    }
    return out;
  };
  const whole: StreamEvent[] = [];
  new EntryScanner().feed(stream, (e) => { whole.push(e); });
  assert.equal(whole.filter((e) => e.type === 'entry').length, 309);
  for (const seed of [1, 2, 3]) {
    const pieces = cut(stream, seed);
    const scanned: StreamEvent[] = [];
    const scanner = new EntryScanner();
    for (const p of pieces) scanner.feed(p, (e) => { scanned.push(e.type === 'data' ? { type: 'data', chunk: Buffer.from(e.chunk) } : e); });
    scanner.finish();
    const parsed: StreamEvent[] = [];
    for await (const e of parseEntryStream(Readable.from(pieces))) parsed.push(e.type === 'data' ? { type: 'data', chunk: Buffer.from(e.chunk) } : e);
    assert.equal(norm(joinData(scanned)), norm(joinData(whole)));
    assert.equal(norm(joinData(parsed)), norm(joinData(whole)));
  }
  // Stopping: the callback returning false ends the feed there.
  let n = 0;
  assert.equal(new EntryScanner().feed(index, () => ++n < 3), false);
  assert.equal(n, 3);
  // A stream that ends inside a record, and a corrupt length.
  const s2 = new EntryScanner();
  s2.feed(index.subarray(0, index.length - 3), () => {});
  assert.throws(() => s2.finish(), /ended in the middle of a record/);
  const bad = Buffer.from(index);
  bad.writeUInt32LE(3, 0);
  assert.throws(() => new EntryScanner().feed(bad, () => {}), /corrupt entry stream/);
});

test('what came before a corrupt record is still handed over first by the stream parser', async () => {
  const { bytes } = records();
  const corrupt = Buffer.concat([bytes, Buffer.from([1, 0, 0, 0, 0])]);
  const seen: string[] = [];
  await assert.rejects((async () => { for await (const e of parseEntryStream(Readable.from([corrupt]))) if (e.type === 'entry') seen.push(e.entry.path); })(), /corrupt entry stream/);
  assert.equal(seen.length, 307);
});

test('a file record read for its compared fields gives what the full decoding gives; other records give null', () => {
  const { entries, bytes } = records();
  for (const seed of [4, 5]) {
    const got: ReturnType<typeof fileFieldsOf>[] = [];
    const scanner = new EntryScanner();
    for (const p of cut(bytes, seed)) scanner.feedRecords(p, (b, start, end) => { got.push(fileFieldsOf(b, start, end)); });
    scanner.finish();
    assert.equal(got.length, entries.length);
    entries.forEach((e, i) => {
      if (e.kind !== 'f') { assert.equal(got[i], null, e.path); return; }
      assert.deepEqual(got[i], { path: e.path, size: e.size, mtimeSec: e.mtimeSec, mtimeNsec: e.mtimeNsec, dataRef: e.dataRef });
    });
  }
  // A record announcing content has no place in an index.
  const withData = encodeEntry(makeEntry({ kind: 'f', path: 'x', size: 0 }), true);
  assert.throws(() => new EntryScanner().feedRecords(withData, () => {}), /content in an index/);
});

test('safe relative paths: the same verdicts as splitting into parts', () => {
  const reference = (p: string): boolean => p !== '' && p.length <= 4096 && !p.startsWith('/') && !p.includes('\0')
    && p.split('/').every((c) => c !== '' && c !== '.' && c !== '..' && c.length <= 255);
  const cases = ['a', 'a/b', '/a', 'a/', 'a//b', '.', '..', 'a/./b', 'a/../b', '...', '.x', '..x', 'x.', 'a/.hidden', `a/${'n'.repeat(255)}`,
    `a/${'n'.repeat(256)}`, 'a\0b', `${'d/'.repeat(2047)}x`, `${'d/'.repeat(2048)}x`, ODD, `${ODD}/..`, '.. ', ' ..'];
  for (const p of cases) assert.equal(isSafeRelative(p), reference(p), JSON.stringify(p.slice(0, 40)));
});

test('the index checks: duplicates, entries outside a folder listed before, hard links to what is not a file', () => {
  const ok = (list: Partial<Entry>[]): void => {
    const v = new IndexValidator('test');
    for (const e of list) v.check(makeEntry({ kind: 'f', path: '', ...e } as Entry));
  };
  const root = { kind: 'd' as const, path: '' };
  ok([root, { kind: 'd', path: 'a' }, { path: 'a/x', size: 1, dataRef: 0 }, { kind: 'h', path: 'a/y', link: 'a/x' }]);
  assert.throws(() => ok([root, { path: 'a', size: 0 }, { path: 'a', size: 0 }]), /listed twice/);
  assert.throws(() => ok([root, { path: 'a', size: 0 }, { path: 'a/x', size: 0 }]), /not inside a directory listed before/);
  assert.throws(() => ok([root, { path: 'b/x', size: 0 }]), /not inside a directory listed before/);
  assert.throws(() => ok([root, { kind: 'd', path: 'a' }, { kind: 'h', path: 'h', link: 'a' }]), /hard link to something that is not a file/);
  assert.throws(() => ok([root, { kind: 'h', path: 'h', link: 'later' }, { path: 'later', size: 0 }]), /hard link/);
  assert.throws(() => ok([root, { kind: 'd', path: '' }]), /home folder entry must come first/);
  assert.throws(() => ok([root, { path: 'a/../b', size: 0 }]), /holds "\.\."/);
});

/** The index checks as they were before the packed table: one Map of every path listed. */
class MapValidator {
  private count = 0;
  private readonly seen = new Map<string, string>();
  check(e: Entry): void {
    this.count++;
    if (e.path === '') {
      if (e.kind !== 'd' || this.count !== 1) throw new Error('home');
    } else {
      if (this.seen.get(e.path.includes('/') ? e.path.slice(0, e.path.lastIndexOf('/')) : '') !== 'd') throw new Error('parent');
      if (this.seen.has(e.path)) throw new Error('twice');
    }
    if (e.kind === 'h' && this.seen.get(e.link) !== 'f') throw new Error('hard link');
    this.seen.set(e.path, e.kind);
  }
}

const verdict = (v: { check(e: Entry): void }, list: Entry[]): string => {
  try {
    for (const e of list) v.check(e);
    return 'ok';
  } catch (err) {
    const m = (err as Error).message;
    return /home/.test(m) ? 'home' : /not inside a directory/.test(m) || m === 'parent' ? 'parent' : /twice/.test(m) ? 'twice' : /hard link/.test(m) ? 'hard link' : m;
  }
};

test('the index checks give the same verdicts as a map of every path, in walk order and out of it (random indexes)', () => {
  let s = 12345;
  const rnd = (n: number): number => { s = (Math.imul(s, 1103515245) + 12345) >>> 0; return (s >>> 8) % n; };
  const names = ['a', 'b', 'a.c', 'a-', 'b0', 'x y', 'é'];
  const counts: Record<string, number> = {};
  for (let round = 0; round < 3000; round++) {
    // A tree walked in walk order (folders, then what they hold, names sorted), then sometimes damaged.
    const list: Entry[] = [makeEntry({ kind: 'd', path: '' })];
    const files: string[] = [];
    const walk = (dir: string, depth: number): void => {
      const picked = [...new Set(Array.from({ length: rnd(4) }, () => names[rnd(names.length)]!))].sort();
      for (const n of picked) {
        const p = dir === '' ? n : `${dir}/${n}`;
        const k = depth < 3 && rnd(3) === 0 ? 'd' : files.length > 0 && rnd(6) === 0 ? 'h' : rnd(8) === 0 ? 'l' : 'f';
        list.push(makeEntry(k === 'h' ? { kind: 'h', path: p, link: files[rnd(files.length)]! } : k === 'l' ? { kind: 'l', path: p, link: 'x' } : { kind: k, path: p }));
        if (k === 'f') files.push(p);
        if (k === 'd') walk(p, depth + 1);
      }
    };
    walk('', 0);
    const damage = rnd(6);
    if (damage === 1 && list.length > 2) list.splice(1 + rnd(list.length - 1), 0, { ...list[1 + rnd(list.length - 1)]! }); // a path twice
    if (damage === 2 && list.length > 2) list.splice(1 + rnd(list.length - 1), 1); // a folder (or anything) left out
    if (damage === 3 && list.length > 3) { const i = 1 + rnd(list.length - 2); [list[i], list[i + 1]] = [list[i + 1]!, list[i]!]; } // out of order
    if (damage === 4 && files.length > 0) list.splice(1 + rnd(list.length - 1), 0, makeEntry({ kind: 'h', path: `${list[list.length - 1]!.path}~`, link: files[rnd(files.length)]! })); // link anywhere
    if (damage === 5 && list.length > 2) list.push(makeEntry({ kind: 'f', path: `${list[1 + rnd(list.length - 1)]!.path}/under` })); // under anything
    const expected = verdict(new MapValidator(), list);
    assert.equal(verdict(new IndexValidator('test'), list), expected, JSON.stringify(list.map((e) => [e.kind, e.path, e.link])));
    counts[expected] = (counts[expected] ?? 0) + 1;
  }
  // Every verdict was met, and not rarely.
  for (const v of ['ok', 'parent', 'twice', 'hard link']) assert.ok((counts[v] ?? 0) > 50, `${v}: ${counts[v]}`);
});

test('the index checks: a folder closed in walk order is not a parent any more; out of walk order the map decides', () => {
  const ok = (paths: [string, string][]): void => {
    const v = new IndexValidator('test');
    for (const [k, p] of paths) v.check(makeEntry({ kind: k as Entry['kind'], path: p }));
  };
  // Out of walk order ("a/y" after "b"), but every parent listed before: accepted, as before.
  ok([['d', ''], ['d', 'a'], ['f', 'a/x'], ['f', 'b'], ['f', 'a/y']]);
  // In walk order, far apart: a hard link to a file listed 5,000 entries before.
  const long: [string, string][] = [['d', ''], ['d', 'd']];
  for (let i = 0; i < 5000; i++) long.push(['f', `d/f${String(i).padStart(5, '0')}`]);
  const v = new IndexValidator('test');
  for (const [k, p] of long) v.check(makeEntry({ kind: k as Entry['kind'], path: p }));
  v.check(makeEntry({ kind: 'h', path: 'e', link: 'd/f00017' }));
  assert.throws(() => v.check(makeEntry({ kind: 'h', path: 'e2', link: 'd/f05000' })), /hard link/);
  assert.throws(() => v.check(makeEntry({ kind: 'h', path: 'e3', link: 'd' })), /hard link/);
  assert.throws(() => v.check(makeEntry({ kind: 'f', path: 'd/f00001/x' })), /not inside a directory/);
});

test('regression: an index written before 2026-12-02 kept a time before 1970 with a negative nanosecond part (as 32 bits); it is read back as the kernel keeps it', () => {
  // 1969-12-31 23:59:58.75: written then as -1 s and -250,000,000 ns (2^32 - 250,000,000).
  const legacy = encodeEntry(makeEntry({ kind: 'f', path: 'old.txt', size: 4, mtimeSec: -1, mtimeNsec: -250_000_000, dataRef: 3 }));
  assert.equal(legacy.readUInt32LE(4 + 30), 2 ** 32 - 250_000_000, 'the stored bits, as the old walk wrote them');
  const events: StreamEvent[] = [];
  new EntryScanner().feed(legacy, (ev) => { events.push(ev); });
  const e = (events[0] as { entry: Entry }).entry;
  assert.deepEqual([e.mtimeSec, e.mtimeNsec], [-2, 750_000_000]);
  const fields: ReturnType<typeof fileFieldsOf>[] = [];
  new EntryScanner().feedRecords(legacy, (b, start, end) => { fields.push(fileFieldsOf(b, start, end)); });
  assert.deepEqual([fields[0]!.mtimeSec, fields[0]!.mtimeNsec], [-2, 750_000_000]);
  // As the walk keeps it now, and any ordinary time: unchanged.
  for (const [sec, nsec] of [[-2, 750_000_000], [1_700_000_000, 999_999_999], [0, 0]] as const) {
    const now: StreamEvent[] = [];
    new EntryScanner().feed(encodeEntry(makeEntry({ kind: 'f', path: 'x', mtimeSec: sec, mtimeNsec: nsec })), (ev) => { now.push(ev); });
    const n = (now[0] as { entry: Entry }).entry;
    assert.deepEqual([n.mtimeSec, n.mtimeNsec], [sec, nsec]);
  }
});
