import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { catalogFile, catalogSnapshots, forgetSnapshots, LARGE_FOLDER, openCatalog } from '../server/engine/catalog/path-catalog.js';
import { syncCatalog } from '../server/engine/catalog/catalog-sync.js';
import { RunAppend } from '../server/engine/catalog/run-append.js';
import { searchCatalog } from '../server/engine/catalog/catalog-query.js';
import { parseNameQuery } from '../server/engine/catalog/name-match.js';
import { makeEntry, type Entry } from '../server/engine/format/entry.js';
import { openRunCatalog, RUN_CATALOG_CACHE_KIB, startRunCatalog } from '../server/services/path-catalogs.js';
import type { Context } from '../server/services/context.js';
import type { DestinationRecord } from '../server/store/destinations.js';

/**
 * A first snapshot's catalog rows written while its backup runs (RunAppend) are row for row
 * those the catalog adds from the snapshot's index afterwards, odd byte names included; no
 * question counts them before they are published; and when another update forgets them
 * meanwhile, or the write lock is held elsewhere, nothing wrong is left.
 */

const hash = (tag: string): Buffer => crypto.createHash('sha256').update(tag).digest();
const at = (n: number): string => `2026-12-${String(n).padStart(2, '0')}T00:00:00.000Z`;

/** An index in walk order: odd byte names (not UTF-8, newline, glob characters), links, a folder large enough to be counted. */
function firstIndex(): Entry[] {
  const out: Entry[] = [makeEntry({ kind: 'd', path: '', mode: 0o751, mtimeSec: 1 })];
  const odd = ['caf\xe9', 'new\nline', 'star*?[x]', '\xff\xfe', 'sp ace'];
  for (const d of odd) {
    out.push(makeEntry({ kind: 'd', path: d, mode: 0o755, mtimeSec: 10, mtimeNsec: 123456789 }));
    out.push(makeEntry({ kind: 'f', path: `${d}/\x01\x7f\x80name`, mode: 0o4755, size: 5, mtimeSec: 20, mtimeNsec: 999999999, hash: hash(d), dataRef: 1 }));
    out.push(makeEntry({ kind: 'l', path: `${d}/link`, mode: 0o777, mtimeSec: 21, link: `../\xe9\n` }));
    out.push(makeEntry({ kind: 'h', path: `${d}/other`, mode: 0o644, size: 5, mtimeSec: 20, link: `${d}/\x01\x7f\x80name` }));
    out.push(makeEntry({ kind: 'f', path: `${d}/empty`, mode: 0o600, mtimeSec: -5, mtimeNsec: 1 }));
  }
  out.push(makeEntry({ kind: 'd', path: 'big', mode: 0o700, mtimeSec: 30 }));
  for (let i = 0; i < LARGE_FOLDER + 3; i++) {
    const p = `big/f${String(i).padStart(5, '0')}`;
    out.push(i % 100 === 0
      ? makeEntry({ kind: 'd', path: p, mode: 0o755, mtimeSec: 40 })
      : makeEntry({ kind: 'f', path: p, mode: 0o644, size: i * 1000, mtimeSec: 1.7e9 + i, hash: hash(p), dataRef: i }));
  }
  out.push(makeEntry({ kind: 'p', path: 'fifo', mode: 0o600, mtimeSec: 50 }));
  return out.sort((a, b) => (Buffer.compare(Buffer.from(a.path, 'latin1'), Buffer.from(b.path, 'latin1'))));
}

const dump = (db: Database.Database): string => JSON.stringify({
  snaps: db.prepare(`SELECT id, finished_at, (SELECT b.id FROM snaps b WHERE b.seq = snaps.base_seq) AS base, entries, bytes, added, changed, removed, added_bytes, changed_bytes, removed_bytes, complete
    FROM snaps ORDER BY seq`).all(),
  versions: db.prepare(`SELECT hex(p.path) AS path, hex(p.folded) AS folded, p.name_at, v.last_seq, v.kind, v.mode, v.size, v.mtime_sec, v.mtime_nsec,
    hex(v.hash) AS hash, hex(v.link) AS link FROM versions v JOIN paths p ON p.id = v.path_id ORDER BY p.path, v.first_seq`).all(),
  times: db.prepare('SELECT count(*) FROM folder_times').pluck().get(),
  counts: db.prepare('SELECT hex(path), total, folders FROM folder_counts ORDER BY path').all(),
  paths: db.prepare('SELECT count(*) FROM paths').pluck().get(),
});

describe('path catalog rows written during a first backup', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-catalog-run-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const index = firstIndex();
  const read = async (_id: string, onEntry: (e: Entry) => void): Promise<void> => { for (const e of index) onEntry({ ...e }); };
  const snap = { id: 's1', finishedAt: at(2) };

  test('published, the rows are those added from the index; before that no question counts them', async () => {
    const full = openCatalog(path.join(dir, 'full.sqlite'))!;
    await syncCatalog(full, [snap], read);
    const file = path.join(dir, 'run.sqlite');
    const db = openCatalog(file)!;
    // A snapshot deleted since it was catalogued is forgotten first.
    await syncCatalog(db, [{ id: 'old', finishedAt: at(1) }], read);
    const run = RunAppend.start(db, [], snap.id, at(1))!;
    assert.ok(run);
    for (const e of index) run.add({ ...e });
    assert.equal(run.finish(snap.finishedAt), true);
    const other = new Database(file, { readonly: true });
    assert.deepEqual(catalogSnapshots(other), [], 'not counted before it is published');
    assert.deepEqual([...searchCatalog(other, [], parseNameQuery('name'))], []);
    assert.equal(run.publish(), true);
    assert.deepEqual(catalogSnapshots(other).map((s) => s.id), ['s1']);
    other.close();
    assert.ok(dump(db) === dump(full), 'the same rows as from the index');
    // The catalog goes on from it as from one built from the index.
    const second = { id: 's2', finishedAt: at(3) };
    await syncCatalog(db, [snap, second], read);
    await syncCatalog(full, [snap, second], read);
    assert.ok(dump(db) === dump(full), 'the same rows after the next snapshot');
    db.close();
    full.close();
  });

  test('not started when a snapshot is listed, or the catalog holds the snapshot already', async () => {
    const db = openCatalog(path.join(dir, 'refused.sqlite'))!;
    assert.equal(RunAppend.start(db, ['s0'], snap.id, at(1)), null);
    await syncCatalog(db, [snap], read);
    assert.equal(RunAppend.start(db, [], snap.id, at(1)), null);
    db.close();
  });

  test('forgotten by another update meanwhile: finish or publish says false and nothing of it stays', async () => {
    for (const when of ['during', 'before-publish'] as const) {
      const file = path.join(dir, `forgotten-${when}.sqlite`);
      const db = openCatalog(file)!;
      const run = RunAppend.start(db, [], snap.id, at(1))!;
      const half = Math.floor(index.length / 2);
      for (const e of index.slice(0, half)) run.add({ ...e });
      const other = openCatalog(file)!;
      if (when === 'during') {
        forgetSnapshots(other, []);
        for (const e of index.slice(half)) run.add({ ...e });
        assert.equal(run.finish(snap.finishedAt), false);
      } else {
        for (const e of index.slice(half)) run.add({ ...e });
        assert.equal(run.finish(snap.finishedAt), true);
        forgetSnapshots(other, []);
        assert.equal(run.publish(), false);
      }
      run.abandon();
      assert.equal(dump(other), dump(openCatalog(path.join(dir, 'empty.sqlite'))!), `nothing stays (${when})`);
      other.close();
      db.close();
    }
  });

  test('a write lock held elsewhere: the records wait for the next batch; at the finish the rows are given up', () => {
    const file = path.join(dir, 'busy.sqlite');
    const db = openCatalog(file)!;
    db.pragma('busy_timeout = 0');
    const run = RunAppend.start(db, [], snap.id, at(1))!;
    const holder = new Database(file);
    holder.exec('BEGIN IMMEDIATE');
    for (const e of index.slice(0, 1500)) run.add({ ...e });
    holder.exec('COMMIT');
    for (const e of index.slice(1500)) run.add({ ...e });
    assert.equal(run.finish(snap.finishedAt), true, 'written once the lock was free');
    assert.equal(run.publish(), true);
    assert.equal(db.prepare('SELECT count(*) FROM versions').pluck().get(), index.length - 1);

    const db2 = openCatalog(path.join(dir, 'busy2.sqlite'))!;
    db2.pragma('busy_timeout = 0');
    const run2 = RunAppend.start(db2, [], snap.id, at(1))!;
    for (const e of index) run2.add({ ...e });
    const holder2 = new Database(path.join(dir, 'busy2.sqlite'));
    holder2.exec('BEGIN IMMEDIATE');
    assert.equal(run2.finish(snap.finishedAt), false);
    assert.equal(run2.givenUp, true);
    holder2.exec('ROLLBACK');
    run2.abandon();
    assert.deepEqual(catalogSnapshots(db2), []);
    assert.equal(db2.prepare('SELECT count(*) FROM snaps').pluck().get(), 0);
    holder.close(); holder2.close(); db.close(); db2.close();
  });

  test('startRunCatalog: only for a first snapshot; staged rows are published with the listing, or go', () => {
    const dataDir = fs.mkdtempSync(path.join(dir, 'data-'));
    let listed: { id: string; finishedAt: string }[] = [];
    const ctx = { dataDir, store: { snapshots: { list: () => listed } } } as unknown as Context;
    const d = { id: 3 } as DestinationRecord;
    const file = catalogFile(dataDir, d.id, 'acct');
    const run = startRunCatalog(ctx, d, 'acct', { id: 's1', startedAt: at(1) })!;
    assert.ok(run);
    for (const e of index) run.add({ ...e });
    const staged = run.stage(snap.finishedAt)!;
    assert.ok(staged);
    listed = [snap];
    staged.commit();
    const db = new Database(file, { readonly: true });
    assert.deepEqual(catalogSnapshots(db).map((s) => s.id), ['s1']);
    db.close();
    assert.equal(startRunCatalog(ctx, d, 'acct', { id: 's2', startedAt: at(3) }), null, 'a snapshot is listed');

    listed = [];
    const failed = startRunCatalog(ctx, d, 'acct', { id: 's3', startedAt: at(4) })!;
    for (const e of index.slice(0, 1200)) failed.add({ ...e });
    failed.abandon();
    const db2 = new Database(file, { readonly: true });
    assert.equal(db2.prepare('SELECT count(*) FROM snaps').pluck().get(), 0);
    assert.equal(db2.prepare('SELECT count(*) FROM versions').pluck().get(), 0);
    db2.close();
  });
  test('regression: the run\'s catalog connection kept better-sqlite3\'s 16 MB page cache beside the backup\'s own peak', () => {
    const file = path.join(fs.mkdtempSync(path.join(dir, 'cache-')), 'catalog.sqlite');
    const db = openRunCatalog(file);
    try {
      assert.equal(db.pragma('cache_size', { simple: true }), -RUN_CATALOG_CACHE_KIB);
      assert.ok(RUN_CATALOG_CACHE_KIB <= 2000, 'at most SQLite\'s own default');
      assert.equal(db.pragma('busy_timeout', { simple: true }), 0, 'never waits for another process\'s write lock');
      assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), 0, 'no checkpoint in the middle of the run');
      // The rows still go in whole with the small cache.
      const run = RunAppend.start(db, [], 's1', at(1))!;
      for (const e of index) run.add({ ...e });
      assert.equal(run.finish(snap.finishedAt), true);
      assert.equal(run.publish(), true);
      assert.equal(db.prepare('SELECT count(*) FROM versions').pluck().get(), index.filter((e) => e.path !== '').length);
    } finally {
      db.close();
    }
  });
});
