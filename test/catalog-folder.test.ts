import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LARGE_FOLDER, openCatalog, markUnreadable } from '../server/engine/catalog/path-catalog.js';
import { syncCatalog, type LiveSnapshot } from '../server/engine/catalog/catalog-sync.js';
import { catalogSeq, folderCounts, folderPage, isCatalogFolder } from '../server/engine/catalog/catalog-folder.js';
import { FolderReader, type FolderItem } from '../server/app/user/folder-listing.js';
import { makeEntry, type Entry } from '../server/engine/format/entry.js';

/**
 * The file browser's folder pages from the path catalog against the same pages read from
 * the snapshot's index (FolderReader, what the browser read before catalogs answered it):
 * same entries, same order, same pages, same totals, for every folder of every snapshot.
 */

type Spec = Partial<Entry> & Pick<Entry, 'kind' | 'path'>;

/** Index order: a folder before what it holds, each folder's entries in byte order of their names. */
const indexOrder = (a: Spec, b: Spec): number => {
  const x = a.path === '' ? [] : a.path.split('/');
  const y = b.path === '' ? [] : b.path.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  return x.length - y.length;
};

const ODD = Buffer.from([0x6f, 0xff, 0x0a, 0x80]).toString('latin1');

function snapshotOne(): Spec[] {
  const e: Spec[] = [
    { kind: 'd', path: '', mode: 0o755, mtimeSec: 100 },
    { kind: 'd', path: 'a', mode: 0o755, mtimeSec: 101, mtimeNsec: 5 },
    { kind: 'f', path: 'a/f1', mode: 0o644, size: 10, mtimeSec: 102 },
    { kind: 'd', path: 'a/sub', mode: 0o700, mtimeSec: 103 },
    { kind: 'f', path: 'a/sub/f2', mode: 0o644, size: 20, mtimeSec: 104 },
    { kind: 'h', path: 'a/sub/hl', mode: 0o644, link: 'a/f1', mtimeSec: 102 },
    { kind: 'd', path: 'a-b', mode: 0o755, mtimeSec: 105 },
    { kind: 'f', path: 'a-b/x', size: 3, mtimeSec: 105 },
    { kind: 'd', path: 'b', mode: 0o755, mtimeSec: 106 },
    { kind: 'f', path: 'b/a0', size: 6, mtimeSec: 104 },
    { kind: 'h', path: 'b/hl2', link: 'a/sub/f2', mtimeSec: 104 },
    // A hard link's first path comes before it in the index (the walk's order).
    { kind: 'h', path: 'b/hl3', link: 'b/a0', mtimeSec: 104 },
    { kind: 'l', path: 'b/link', link: '../x', mtimeSec: 107 },
    { kind: 'p', path: 'b/fifo', mode: 0o600, mtimeSec: 108 },
    { kind: 'f', path: 'b/z', size: 7, mtimeSec: 109 },
    { kind: 'd', path: 'big', mode: 0o755, mtimeSec: 110 },
    { kind: 'd', path: 'big/d1', mtimeSec: 111 },
    { kind: 'f', path: 'big/d1/in', size: 4, mtimeSec: 111 },
    { kind: 'd', path: 'big/d2', mtimeSec: 112 },
    { kind: 'd', path: 'empty', mtimeSec: 113 },
    { kind: 'd', path: ODD, mtimeSec: 114 },
    { kind: 'f', path: `${ODD}/\x80x`, size: 1, mtimeSec: 114 },
    { kind: 'f', path: `${ODD}/a b`, size: 2, mtimeSec: 114 },
    { kind: 'f', path: `${ODD}/a\nb`, size: 3, mtimeSec: 114 },
    { kind: 'f', path: 'z.txt', size: 5, mtimeSec: 115 },
  ];
  for (let i = 0; i < 250; i++) e.push({ kind: 'f', path: `big/entry-${String(i).padStart(4, '0')}`, size: i, mtimeSec: 200 + i });
  // Large enough that its counts are kept with the snapshot (LARGE_FOLDER).
  e.push({ kind: 'd', path: 'large', mtimeSec: 116 }, { kind: 'd', path: 'large/sub', mtimeSec: 116 });
  for (let i = 0; i < LARGE_FOLDER + 50; i++) e.push({ kind: 'f', path: `large/${String(i).padStart(5, '0')}`, size: 1, mtimeSec: 117 });
  return e;
}

/** Changed: a folder's time and mode, a file's size, removals and additions. */
function snapshotTwo(): Spec[] {
  return snapshotOne().filter((e) => e.path !== 'b/link' && e.path !== 'big/entry-0007')
    .map((e) => (e.path === 'a' ? { ...e, mtimeSec: 301 } : e.path === 'a/sub' ? { ...e, mode: 0o750 } : e.path === 'a/f1' ? { ...e, size: 11, mtimeSec: 302 } : e))
    .concat([{ kind: 'f', path: 'a/new', size: 9, mtimeSec: 303 }, { kind: 'd', path: 'big/d0', mtimeSec: 304 }]);
}

/** The folder's time back to what the first snapshot held; another folder changes. */
function snapshotThree(): Spec[] {
  return snapshotTwo().map((e) => (e.path === 'a' ? { ...e, mtimeSec: 101, mtimeNsec: 5 } : e.path === 'big' ? { ...e, mtimeSec: 401 } : e));
}

function snapshotFour(): Spec[] {
  return snapshotThree().filter((e) => !e.path.startsWith('a-b') && e.path !== 'large/00003').map((e) => (e.path === 'big' ? { ...e, mtimeSec: 501 } : e));
}

const trees: Record<string, () => Spec[]> = { s1: snapshotOne, s2: snapshotTwo, s3: snapshotThree, s4: snapshotFour };
const at = (id: string): string => `2026-11-0${id.slice(1)}T00:00:00.000Z`;
const live = (...ids: string[]): LiveSnapshot[] => ids.map((id) => ({ id, finishedAt: at(id) }));
const entriesOf = (id: string): Entry[] => trees[id]!().sort(indexOrder).map((s) => makeEntry(s));
const read = async (id: string, onEntry: (e: Entry) => void): Promise<void> => { for (const e of entriesOf(id)) onEntry(e); };

const shown = (i: FolderItem | { entry: FolderItem['entry']; name: string; files: number; bytes: number }) => ({
  kind: i.entry.kind, path: i.entry.path, mode: i.entry.mode, size: i.entry.size, mtimeSec: i.entry.mtimeSec, mtimeNsec: i.entry.mtimeNsec,
  link: i.entry.link, name: i.name, files: i.files, bytes: i.bytes,
});

/** Every folder of snapshot `id`, in pages of `size`: from the catalog and from the index entries. */
function compareAll(db: NonNullable<ReturnType<typeof openCatalog>>, id: string, size: number): number {
  const index = new FolderReader('');
  for (const e of entriesOf(id)) index.add(e);
  const { folders } = index.result();
  const seq = catalogSeq(db, { id, finishedAt: at(id) });
  assert.notEqual(seq, null, `${id} is catalogued`);
  let compared = 0;
  for (const [dir, listing] of folders) {
    assert.ok(isCatalogFolder(db, seq!, dir), `${id}: ${JSON.stringify(dir)} is a folder`);
    const counts = folderCounts(db, seq!, dir);
    assert.equal(counts.total, listing.items.length, `${id}: entries of ${JSON.stringify(dir)}`);
    assert.equal(counts.folders, listing.items.filter((i) => i.entry.kind === 'd').length);
    const pages = Math.max(1, Math.ceil(counts.total / size));
    for (let p = 0; p < pages; p++) {
      const fromCatalog = folderPage(db, seq!, dir, counts, p * size, size).map(shown);
      const fromIndex = listing.items.slice(p * size, (p + 1) * size).map(shown);
      assert.deepEqual(fromCatalog, fromIndex, `${id}: ${JSON.stringify(dir)}, page ${p + 1} of ${size}`);
      compared += fromCatalog.length;
    }
  }
  return compared;
}

describe('folder pages from the path catalog', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-catalog-folder-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('the same entries, order, pages, times and totals as the index gives, in every folder of every snapshot', async () => {
    const db = openCatalog(path.join(dir, 'one.sqlite'))!;
    await syncCatalog(db, live('s1', 's2', 's3'), read);
    for (const id of ['s1', 's2', 's3']) {
      for (const size of [7, 100]) assert.ok(compareAll(db, id, size) > 250);
    }
    db.close();
  });

  test('a folder\'s own time as each snapshot holds it, also after a snapshot between is deleted and another added', async () => {
    const db = openCatalog(path.join(dir, 'two.sqlite'))!;
    await syncCatalog(db, live('s1', 's2', 's3'), read);
    await syncCatalog(db, live('s1', 's3'), read);
    await syncCatalog(db, live('s1', 's3', 's4'), read);
    for (const id of ['s1', 's3', 's4']) compareAll(db, id, 50);
    const kept = (): unknown[] => db.prepare("SELECT s.id, c.total, c.folders FROM folder_counts c JOIN snaps s ON s.seq = c.seq WHERE c.path = CAST('large' AS BLOB) ORDER BY s.seq").raw(true).all();
    assert.deepEqual(kept(), [['s1', LARGE_FOLDER + 51, 1], ['s3', LARGE_FOLDER + 51, 1], ['s4', LARGE_FOLDER + 50, 1]], 'the large folder\'s counts, kept per snapshot, the deleted one\'s gone');
    const seq = catalogSeq(db, { id: 's4', finishedAt: at('s4') })!;
    const big = folderPage(db, seq, '', folderCounts(db, seq, ''), 0, 100).find((i) => i.name === 'big')!;
    assert.equal(big.entry.mtimeSec, 501);
    db.close();
  });

  test('no answer for a snapshot the catalog does not hold completely, nor under another time: the index is read then', async () => {
    const db = openCatalog(path.join(dir, 'three.sqlite'))!;
    await syncCatalog(db, live('s1'), read);
    assert.notEqual(catalogSeq(db, { id: 's1', finishedAt: at('s1') }), null);
    assert.equal(catalogSeq(db, { id: 's1', finishedAt: at('s2') }), null, 'a former snapshot of the same id');
    assert.equal(catalogSeq(db, { id: 's2', finishedAt: at('s2') }), null);
    markUnreadable(db, { id: 's5', finishedAt: at('s5') });
    assert.equal(catalogSeq(db, { id: 's5', finishedAt: at('s5') }), null, 'a refused index');
    db.prepare("UPDATE meta SET value = '2' WHERE key = 'format'").run();
    assert.equal(catalogSeq(db, { id: 's1', finishedAt: at('s1') }), null, 'a catalog of another format');
    db.close();
  });

  test('a file or a missing path is not a folder', async () => {
    const db = openCatalog(path.join(dir, 'four.sqlite'))!;
    await syncCatalog(db, live('s1'), read);
    const seq = catalogSeq(db, { id: 's1', finishedAt: at('s1') })!;
    assert.equal(isCatalogFolder(db, seq, 'z.txt'), false);
    assert.equal(isCatalogFolder(db, seq, 'nope'), false);
    assert.equal(isCatalogFolder(db, seq, 'b/link'), false);
    assert.equal(isCatalogFolder(db, seq, 'empty'), true);
    assert.deepEqual(folderCounts(db, seq, 'empty'), { total: 0, folders: 0 });
    db.close();
  });
});
