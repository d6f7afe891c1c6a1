import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { appendChanges, LARGE_FOLDER, openCatalog } from '../server/engine/catalog/path-catalog.js';
import { syncCatalog, type LiveSnapshot } from '../server/engine/catalog/catalog-sync.js';
import { ChangeTracker, type SnapshotChanges } from '../server/engine/catalog/snapshot-changes.js';
import { makeEntry, type Entry } from '../server/engine/format/entry.js';

/**
 * A backup adds its snapshot to the path catalog from what it found changed against the
 * previous snapshot (ChangeTracker, appendChanges) instead of reading the whole index again.
 * The catalog it leaves must be the one reading the index builds, row for row: the same
 * versions and intervals, folder times, folder counts and change counts, through changes,
 * removals, kind changes, odd names, hashes that come and go, and deleted snapshots.
 */

const ODD = Buffer.from([0x6f, 0xff, 0x0a, 0x80]).toString('latin1');
const hash = (tag: string): Buffer => crypto.createHash('sha256').update(tag).digest();

/** Index order: a folder before what it holds, names in byte order. */
const indexOrder = (a: Entry, b: Entry): number => {
  const x = a.path === '' ? [] : a.path.split('/');
  const y = b.path === '' ? [] : b.path.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  return x.length - y.length;
};

/** A pseudo-random generator with a seed, so that a failure can be run again. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32; };
}

/** A first tree: folders, files, a large folder, links, a fifo, odd names. */
function firstTree(): Map<string, Entry> {
  const t = new Map<string, Entry>();
  const add = (e: Partial<Entry> & Pick<Entry, 'kind' | 'path'>): void => { t.set(e.path, makeEntry({ mode: e.kind === 'd' ? 0o755 : 0o644, mtimeSec: 100, ...e })); };
  add({ kind: 'd', path: '' });
  for (const d of ['a', 'a/sub', 'b', 'big', ODD]) add({ kind: 'd', path: d, mtimeSec: 101 });
  for (let i = 0; i < 40; i++) {
    const p = `${['a', 'a/sub', 'b', ODD][i % 4]}/f${i}${i % 7 === 0 ? '\n?*' : ''}`;
    add({ kind: 'f', path: p, size: i * 10, mtimeSec: 200 + i, mtimeNsec: i, hash: hash(p), dataRef: i });
  }
  for (let i = 0; i < LARGE_FOLDER + 5; i++) add({ kind: 'f', path: `big/e${String(i).padStart(5, '0')}`, size: i, mtimeSec: 300, hash: hash(`big${i}`), dataRef: 100 + i });
  add({ kind: 'l', path: 'b/link', link: '../a/f0', mode: 0o777 });
  add({ kind: 'h', path: 'b/hard', link: 'a/f4' });
  add({ kind: 'p', path: 'b/fifo', mode: 0o600 });
  return t;
}

/** The next snapshot's tree: some of everything a home goes through between two backups. */
function mutate(prev: Map<string, Entry>, rnd: () => number, round: number): Map<string, Entry> {
  const t = new Map([...prev].map(([p, e]) => [p, { ...e }]));
  const paths = [...t.keys()].filter((p) => p !== '' && !p.startsWith('big/'));
  const pick = (): string => paths[Math.floor(rnd() * paths.length)]!;
  for (let i = 0; i < 6; i++) {
    const p = pick();
    const e = t.get(p);
    if (!e) continue;
    const what = Math.floor(rnd() * 8);
    if (what === 0 && e.kind === 'f') { e.size += 1; e.mtimeSec += 1; e.hash = hash(`${p}${round}`); }
    else if (what === 1) e.mode ^= 0o040;
    else if (what === 2) { e.mtimeNsec += 1; }
    else if (what === 3 && e.kind === 'f') { delete e.hash; }
    else if (what === 4 && e.kind === 'f') { e.hash = hash(`${p}${round}h`); }
    else if (what === 5 && e.kind !== 'd') t.delete(p);
    else if (what === 6 && e.kind === 'f' && !p.includes('/f4')) t.set(p, makeEntry({ kind: 'l', path: p, link: `target${round}`, mtimeSec: 500 + round }));
    else if (what === 7 && e.kind === 'd') { e.mtimeSec += 1; }
  }
  // Hard links only to a file listed before them.
  if (t.get('b/hard') && t.get('a/f4')?.kind !== 'f') t.delete('b/hard');
  t.set(`a/new${round}`, makeEntry({ kind: 'f', path: `a/new${round}`, size: round, mtimeSec: 600 + round, hash: hash(`new${round}`) }));
  if (round % 3 === 0) t.delete(`a/new${round - 1}`);
  if (round % 4 === 1) t.set(`big/e${String(round).padStart(5, '0')}`, makeEntry({ kind: 'f', path: `big/e${String(round).padStart(5, '0')}`, size: 9, mtimeSec: 9, hash: hash(`b${round}`) }));
  return t;
}

const asIndex = (t: Map<string, Entry>): Entry[] => [...t.values()].sort(indexOrder);

/** The catalog's rows by path and snapshot (not by row id, which depends on insertion order). */
function dump(db: Database.Database): string {
  const snaps = db.prepare(`SELECT seq, id, base_seq, entries, bytes, added, changed, removed, added_bytes, changed_bytes, removed_bytes, complete
    FROM snaps ORDER BY seq`).all();
  const versions = db.prepare(`SELECT hex(p.path) AS path, hex(p.folded) AS folded, p.name_at, v.first_seq, v.last_seq, v.kind, v.mode, v.size,
    v.mtime_sec, v.mtime_nsec, hex(v.hash) AS hash, hex(v.link) AS link,
    (SELECT group_concat(t.seq || ':' || t.mode || ':' || t.mtime_sec || ':' || t.mtime_nsec, ',') FROM
      (SELECT * FROM folder_times WHERE version_id = v.id ORDER BY seq) t) AS times
    FROM versions v JOIN paths p ON p.id = v.path_id ORDER BY p.path, v.first_seq`).all();
  const counts = db.prepare('SELECT seq, hex(path) AS path, total, folders FROM folder_counts ORDER BY seq, path').all();
  const paths = db.prepare('SELECT hex(path) FROM paths ORDER BY path').pluck().all();
  return JSON.stringify({ snaps, versions, counts, paths }, null, 1);
}

describe('path catalog from the changes a backup found', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-catalog-changes-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const at = (n: number): string => `2026-11-${String(n).padStart(2, '0')}T00:00:00.000Z`;

  /** Changes of `id` against `baseId` as the backup gathers them (base index read, then the new one written). */
  const changesOf = (id: string, baseId: string, base: Entry[], next: Entry[], maxChanges?: number): SnapshotChanges | null => {
    const tracker = new ChangeTracker(id, baseId, maxChanges);
    for (const e of base) tracker.addBase({ ...e });
    for (const e of next) tracker.addNew({ ...e });
    return tracker.finish();
  };

  for (const seed of [1, 2, 3, 4, 5]) {
    test(`the same rows as reading each index, over 12 snapshots with some deleted (seed ${seed})`, async () => {
      const rnd = random(seed);
      const indexes = new Map<string, Entry[]>();
      const read = async (id: string, onEntry: (e: Entry) => void): Promise<void> => { for (const e of indexes.get(id)!) onEntry({ ...e }); };
      const full = openCatalog(path.join(dir, `full-${seed}.sqlite`))!;
      const quick = openCatalog(path.join(dir, `quick-${seed}.sqlite`))!;
      let live: LiveSnapshot[] = [];
      let tree = firstTree();
      let usedChanges = 0;
      for (let n = 1; n <= 12; n++) {
        const id = `s${String(n).padStart(2, '0')}`;
        // Now and then the newest snapshot is deleted before the next backup (retention, by
        // hand), and now and then the home is put back as the snapshot before it held it (a
        // restore): versions the deleted one had closed are then held again.
        if (n > 2 && rnd() < 0.3) {
          live = live.slice(0, -1);
          await syncCatalog(full, live, read);
          await syncCatalog(quick, live, read);
          if (rnd() < 0.6) tree = new Map(indexes.get(live.at(-1)!.id)!.map((e) => [e.path, { ...e }]));
        }
        if (n > 1) tree = mutate(tree, rnd, n);
        indexes.set(id, asIndex(tree));
        const base = live.at(-1);
        live = [...live, { id, finishedAt: at(n) }];
        const changes = base ? changesOf(id, base.id, indexes.get(base.id)!, indexes.get(id)!) : null;
        if (changes) usedChanges++;
        await syncCatalog(full, live, read);
        // The first snapshot has no changes: both read its index.
        await syncCatalog(quick, live, changes ? () => Promise.reject(new Error('the index was read although the changes were given')) : read,
          undefined, Infinity, changes);
        assert.equal(dump(quick), dump(full), `after ${id}`);
      }
      assert.ok(usedChanges >= 9, `the changes were used (${usedChanges})`);
      full.close();
      quick.close();
    });
  }

  test('a catalog whose newest snapshot is not the base, or holds other totals, is left alone: the index is read', async () => {
    const t1 = asIndex(firstTree());
    const t2 = asIndex(mutate(firstTree(), random(9), 2));
    const t3 = asIndex(mutate(mutate(firstTree(), random(9), 2), random(10), 3));
    const db = openCatalog(path.join(dir, 'mismatch.sqlite'))!;
    const indexes = new Map([['s1', t1], ['s2', t2], ['s3', t3]]);
    let reads = 0;
    const read = async (id: string, onEntry: (e: Entry) => void): Promise<void> => { reads++; for (const e of indexes.get(id)!) onEntry({ ...e }); };
    await syncCatalog(db, [{ id: 's1', finishedAt: at(1) }], read);
    // Changes of s3 computed against s2, which the catalog does not hold.
    const wrongBase = changesOf('s3', 's2', t2, t3)!;
    assert.equal(appendChanges(db, { id: 's3', finishedAt: at(3) }, wrongBase), 'mismatch');
    // Against s1 by name, but from another tree than the one catalogued as s1.
    const otherTotals = changesOf('s3', 's1', t2, t3)!;
    assert.equal(appendChanges(db, { id: 's3', finishedAt: at(3) }, otherTotals), 'mismatch');
    reads = 0;
    await syncCatalog(db, [{ id: 's1', finishedAt: at(1) }, { id: 's3', finishedAt: at(3) }], read, undefined, Infinity, wrongBase);
    assert.equal(reads, 1, 'the index of s3 was read instead');
    const reference = openCatalog(path.join(dir, 'mismatch-ref.sqlite'))!;
    await syncCatalog(reference, [{ id: 's1', finishedAt: at(1) }, { id: 's3', finishedAt: at(3) }], read);
    assert.equal(dump(db), dump(reference));
    // Already there: nothing is written twice.
    assert.equal(appendChanges(db, { id: 's3', finishedAt: at(3) }, changesOf('s3', 's1', t1, t3)!), false);
    db.close();
    reference.close();
  });

  test('past its limit the tracker gives up (null), and frees what it held', () => {
    const t1 = asIndex(firstTree());
    const t2 = t1.map((e) => (e.kind === 'f' ? { ...e, mtimeSec: e.mtimeSec + 1 } : e));
    assert.equal(changesOf('s2', 's1', t1, t2, 100), null, 'every file changed');
    assert.equal(changesOf('s2', 's1', t1, t1.slice(0, 10), 100), null, 'nearly every path removed');
    const same = changesOf('s2', 's1', t1, t1, 100)!;
    assert.deepEqual([same.candidates.length, same.removed.length], [0, 0], 'an unchanged tree has nothing to look up');
    assert.deepEqual(same.largeFolders, [['big', LARGE_FOLDER + 5, 0]]);
  });
});
