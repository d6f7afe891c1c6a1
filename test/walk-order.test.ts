import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { compareWalkOrder, OrderedPathTable, PathSequence } from '../server/util/walk-order.js';
import { PreviousFiles } from '../server/engine/worker/previous-files.js';
import { PreviousBlobs } from '../server/engine/previous-blobs.js';
import { ChangeTracker } from '../server/engine/catalog/snapshot-changes.js';
import { makeEntry, type Entry } from '../server/engine/format/entry.js';

/**
 * The packed forms a second incremental keeps of the previous index (worker and root) and
 * the walk order they are joined in: the order must be the walk's (a folder, then what it
 * holds, names in byte order), what is packed must come back exact, and input out of that
 * order must never pair entries wrongly.
 */

/** The walk's order as the walk makes it: names compared part by part, a folder before what it holds. */
const byParts = (a: string, b: string): number => {
  const x = a === '' ? [] : a.split('/');
  const y = b === '' ? [] : b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  return x.length - y.length;
};

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32; };
}

/** Paths with names made of bytes around '/' ('-', '.', '0'), control bytes and bytes above 0x7f. */
function randomPaths(rnd: () => number, n: number): string[] {
  const alphabet = ['a', 'b', '-', '.', '0', '\x01', '\n', '\xff', '\x80', 'ab', 'a.b'];
  const out = new Set<string>(['']);
  const dirs = [''];
  while (out.size < n) {
    const parent = dirs[Math.floor(rnd() * dirs.length)]!;
    let name = '';
    for (let k = 1 + Math.floor(rnd() * 3); k > 0; k--) name += alphabet[Math.floor(rnd() * alphabet.length)]!;
    const p = parent === '' ? name : `${parent}/${name}`;
    if (out.has(p)) continue;
    out.add(p);
    if (rnd() < 0.3) dirs.push(p);
  }
  return [...out];
}

describe('walk order', () => {
  test('compareWalkOrder sorts as the walk does, for any bytes in names', () => {
    const rnd = random(7);
    const paths = randomPaths(rnd, 3000);
    const expected = [...paths].sort(byParts);
    assert.deepEqual([...paths].sort(compareWalkOrder), expected);
    for (let i = 0; i < 2000; i++) {
      const a = paths[Math.floor(rnd() * paths.length)]!;
      const b = paths[Math.floor(rnd() * paths.length)]!;
      assert.equal(Math.sign(compareWalkOrder(a, b)), Math.sign(byParts(a, b)), `${JSON.stringify(a)} ${JSON.stringify(b)}`);
    }
    assert.ok(compareWalkOrder('a/b', 'a.c') < 0);
    assert.ok(compareWalkOrder('a', 'a/b') < 0);
  });

  test('a PathSequence gives back every path exactly, in order, and knows whether they came in walk order', () => {
    const paths = [...randomPaths(random(11), 5000), `x/${'long name '.repeat(40)}`, `x/${'long name '.repeat(40)}z`].sort(compareWalkOrder);
    const seq = new PathSequence();
    for (const p of paths) seq.push(p);
    assert.equal(seq.ordered, true);
    assert.equal(seq.length, paths.length);
    const back: string[] = [];
    for (const c = seq.cursor(); c.next();) back.push(c.path);
    assert.deepEqual(back, paths);

    const twice = new PathSequence();
    for (const p of ['a', 'b', 'b']) twice.push(p);
    assert.equal(twice.ordered, false, 'a path listed twice is not in walk order');
    const backwards = new PathSequence();
    for (const p of ['a', 'a.c', 'a/b']) backwards.push(p);
    assert.equal(backwards.ordered, false, '"a/b" comes before "a.c" in the walk');
    const prefix = new PathSequence();
    for (const p of ['ab', 'a']) prefix.push(p);
    assert.equal(prefix.ordered, false);
  });

  test('a cursor seeks forward to paths asked for in walk order, and misses those not there', () => {
    const all = randomPaths(random(3), 4000).sort(compareWalkOrder);
    const held = all.filter((_, i) => i % 3 !== 0);
    const seq = new PathSequence();
    for (const p of held) seq.push(p);
    const c = seq.cursor();
    const heldSet = new Set(held);
    for (const p of all) {
      const found = c.seek(p);
      assert.equal(found, heldSet.has(p), JSON.stringify(p));
      if (found) assert.equal(c.path, p);
    }
  });
});

describe('the worker\'s previous files', () => {
  const file = (i: number): { size: number; mtimeSec: number; mtimeNsec: number; dataRef: number } =>
    ({ size: i * 7, mtimeSec: 1_700_000_000 + i, mtimeNsec: (i * 999_999) % 1_000_000_000, dataRef: 2 ** 33 + i });

  test('in walk order: found by a cursor as the walk asks, fields exact', () => {
    const paths = randomPaths(random(5), 3000).filter((p) => p !== '').sort(compareWalkOrder);
    const prev = new PreviousFiles();
    paths.forEach((p, i) => { if (i % 2 === 0) prev.add(p, file(i)); });
    paths.forEach((p, i) => assert.deepEqual(prev.get(p), i % 2 === 0 ? file(i) : undefined));
  });

  test('out of walk order (an index this walk did not write): still found, through a map', () => {
    const paths = randomPaths(random(9), 2000).filter((p) => p !== '');
    const prev = new PreviousFiles();
    paths.forEach((p, i) => prev.add(p, file(i)));
    const rnd = random(1);
    for (let k = 0; k < 3000; k++) {
      const i = Math.floor(rnd() * paths.length);
      assert.deepEqual(prev.get(paths[i]!), file(i));
    }
    assert.equal(prev.get('not/there'), undefined);
  });
});

describe('root\'s previous blobs', () => {
  test('numbers and hashes come back exact, large numbers too; a number given twice keeps the later hash', () => {
    const blobs = new PreviousBlobs();
    const refs: number[] = [];
    for (let i = 0; i < 5000; i++) refs.push(i % 2 ? i : 2 ** 40 + i * 4096);
    const hashOf = (n: number): Buffer => crypto.createHash('sha256').update(String(n)).digest();
    for (const n of refs) blobs.add(n, n % 3 === 0 ? undefined : hashOf(n));
    blobs.add(refs[1]!, hashOf(-1));
    assert.equal(blobs.size, refs.length);
    assert.deepEqual([...blobs].sort((a, b) => a - b), [...refs].sort((a, b) => a - b));
    for (const n of refs) {
      assert.equal(blobs.has(n), true);
      const expected = n === refs[1] ? hashOf(-1) : n % 3 === 0 ? undefined : hashOf(n);
      assert.deepEqual(blobs.hashOf(n), expected);
    }
    for (const n of [-1, 2, 2 ** 40 + 1, 2 ** 52, 0.5]) if (!refs.includes(n)) assert.equal(blobs.has(n), false);
  });

  test('a blob is taken at most once, and only one the previous index has; the rest are listed as untaken', () => {
    const blobs = new PreviousBlobs();
    for (const n of [5, 2 ** 35, 7, 9]) blobs.add(n, undefined);
    assert.equal(blobs.take(5), true);
    assert.equal(blobs.take(5), false, 'taken twice');
    assert.equal(blobs.take(6), false, 'not in the previous index');
    assert.equal(blobs.take(2 ** 35), true);
    assert.deepEqual([...blobs.untaken()].sort((a, b) => a - b), [7, 9]);
  });
});

describe('the change tracker and walk order', () => {
  const entries = (paths: string[]): Entry[] => paths.map((p, i) => makeEntry({ kind: p.includes('.') ? 'f' : 'd', path: p, size: i, mtimeSec: 1, dataRef: i }));
  const base = entries(['', 'a', 'a/x.1', 'a/y.2', 'b', 'b/z.3']);

  test('entries in walk order are paired: what changed, what went', () => {
    const t = new ChangeTracker('n', 'b');
    for (const e of base) t.addBase(e);
    const next = [base[0]!, base[1]!, { ...base[3]!, size: 99 }, base[4]!, makeEntry({ kind: 'f', path: 'b/w.4' }), base[5]!];
    for (const e of next) t.addNew(e);
    const c = t.finish()!;
    assert.deepEqual(c.candidates.map((e) => e.path), ['a/y.2', 'b/w.4']);
    assert.deepEqual(c.removed, ['a/x.1']);
  });

  test('new entries out of walk order: the tracker gives up (the catalog then reads the index), never pairs wrongly', () => {
    const t = new ChangeTracker('n', 'b');
    for (const e of base) t.addBase(e);
    for (const e of [base[0]!, base[4]!, base[1]!, base[2]!, base[3]!, base[5]!]) t.addNew(e);
    assert.equal(t.finish(), null);
  });

  test('a base out of walk order: the tracker gives up', () => {
    const t = new ChangeTracker('n', 'b');
    for (const e of [base[0]!, base[4]!, base[1]!]) t.addBase(e);
    for (const e of [base[0]!, base[1]!, base[4]!]) t.addNew(e);
    assert.equal(t.finish(), null);
  });
});

test('OrderedPathTable: finds every path added with its tag, none that was not, refuses what is not strictly after', () => {
  const paths: string[] = [''];
  const dirs = ['a', 'a.b', 'a/b', 'a/b/c', 'ab', 'z', `z/${'\xff'.repeat(300)}`, 'é'];
  for (const d of dirs) for (let i = 0; i < 40; i++) paths.push(`${d}/n${String(i).padStart(2, '0')}`);
  paths.push(...dirs);
  paths.sort(compareWalkOrder);
  const t = new OrderedPathTable();
  paths.forEach((p, i) => assert.equal(t.push(p, i % 5), true, p));
  assert.equal(t.length, paths.length);
  paths.forEach((p, i) => assert.equal(t.tagOf(p), i % 5, p));
  for (const p of ['a/n', 'a/n40', 'a/b/n00x', 'a/b/c/n39/x', '0', 'zz', 'a/', 'a//n00', `z/${'\xff'.repeat(299)}`, '\xff']) assert.equal(t.tagOf(p), -1, p);
  assert.deepEqual([...t.entries()].map(([p]) => p), paths);
  assert.equal(t.push(paths[paths.length - 1]!, 0), false, 'the same path again');
  assert.equal(t.push('a', 0), false, 'a path before the last');
  assert.equal(t.length, paths.length);
  assert.equal(new OrderedPathTable().tagOf('a'), -1);
});
