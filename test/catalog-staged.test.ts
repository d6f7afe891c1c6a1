import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { catalogFile, catalogSnapshots, openCatalog } from '../server/engine/catalog/path-catalog.js';
import { stageSnapshot, syncCatalog, type LiveSnapshot } from '../server/engine/catalog/catalog-sync.js';
import { ChangeTracker } from '../server/engine/catalog/snapshot-changes.js';
import { SnapshotInputError } from '../server/engine/untrusted-input.js';
import { makeEntry, type Entry } from '../server/engine/format/entry.js';
import { stageAccountCatalog, syncAccountCatalog } from '../server/services/path-catalogs.js';
import type { Context } from '../server/services/context.js';
import type { DestinationRecord } from '../server/store/destinations.js';

/**
 * A backup adds its snapshot to the path catalog while its data is flushed, in a transaction
 * that is committed only once the snapshot is listed (stageSnapshot, stageAccountCatalog):
 * committed, the catalog is row for row the one syncCatalog builds after the run; rolled back
 * (the backup did not commit), it is as before; and whenever staging cannot be done at once
 * it holds nothing, so that the update after the run does the work as before.
 */

const hash = (tag: string): Buffer => crypto.createHash('sha256').update(tag).digest();
const at = (n: number): string => `2026-11-${String(n).padStart(2, '0')}T00:00:00.000Z`;

/** Snapshot n's index: a few folders and files, some changed from one snapshot to the next. */
function indexOf(n: number): Entry[] {
  const out: Entry[] = [makeEntry({ kind: 'd', path: '', mode: 0o755, mtimeSec: 1 })];
  for (const d of ['a', 'b']) {
    out.push(makeEntry({ kind: 'd', path: d, mode: 0o755, mtimeSec: 10 + (d === 'a' ? n : 0) }));
    for (let i = 0; i < 20; i++) {
      const changed = (i + n) % 7 === 0;
      const p = `${d}/f${String(i).padStart(2, '0')}`;
      if (i === n) continue;
      out.push(makeEntry({ kind: 'f', path: p, mode: 0o644, size: i + (changed ? n : 0), mtimeSec: 100 + (changed ? n : 0), hash: hash(`${p}${changed ? n : ''}`), dataRef: i }));
    }
  }
  return out;
}

const dump = (db: Database.Database): string => JSON.stringify({
  snaps: db.prepare('SELECT seq, id, base_seq, entries, bytes, added, changed, removed, added_bytes, changed_bytes, removed_bytes, complete FROM snaps ORDER BY seq').all(),
  versions: db.prepare(`SELECT hex(p.path) AS path, v.first_seq, v.last_seq, v.kind, v.mode, v.size, v.mtime_sec, v.mtime_nsec, hex(v.hash) AS hash
    FROM versions v JOIN paths p ON p.id = v.path_id ORDER BY p.path, v.first_seq`).all(),
  times: db.prepare('SELECT seq, mode, mtime_sec FROM folder_times ORDER BY version_id, seq').all(),
  paths: db.prepare('SELECT hex(path) FROM paths ORDER BY path').pluck().all(),
});

describe('path catalog staged during the backup\'s flush', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-catalog-staged-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const indexes = new Map<string, Entry[]>();
  const read = async (id: string, onEntry: (e: Entry) => void): Promise<void> => { for (const e of indexes.get(id)!) onEntry({ ...e }); };
  for (let n = 1; n <= 6; n++) indexes.set(`s${n}`, indexOf(n));
  const changesOf = (id: string, baseId: string) => {
    const tracker = new ChangeTracker(id, baseId);
    for (const e of indexes.get(baseId)!) tracker.addBase({ ...e });
    for (const e of indexes.get(id)!) tracker.addNew({ ...e });
    return tracker.finish();
  };

  for (const withChanges of [false, true]) {
    test(`committed, the same rows as the update after the run; rolled back, nothing (${withChanges ? 'from the changes' : 'from the index'})`, async () => {
      const full = openCatalog(path.join(dir, `full-${withChanges}.sqlite`))!;
      const staged = openCatalog(path.join(dir, `staged-${withChanges}.sqlite`))!;
      const file = path.join(dir, `staged-${withChanges}.sqlite`);
      let live: LiveSnapshot[] = [];
      for (let n = 1; n <= 6; n++) {
        const snap = { id: `s${n}`, finishedAt: at(n) };
        const changes = withChanges && n > 1 ? changesOf(snap.id, `s${n - 1}`) : null;
        // Every third snapshot is rolled back first (its backup failed at the manifest), then made again.
        if (n % 3 === 0) {
          const before = dump(staged);
          assert.equal(await stageSnapshot(staged, live, snap, (onEntry) => read(snap.id, onEntry), changes), true);
          assert.ok(staged.inTransaction);
          staged.exec('ROLLBACK');
          assert.equal(dump(staged), before, `rolled back ${snap.id}`);
        }
        assert.equal(await stageSnapshot(staged, live, snap, (onEntry) => read(snap.id, onEntry), changes), true);
        // Another connection does not see it before the commit.
        const other = new Database(file, { readonly: true });
        assert.ok(!catalogSnapshots(other).some((s) => s.id === snap.id), `${snap.id} is not seen before its commit`);
        staged.exec('COMMIT');
        assert.ok(catalogSnapshots(other).some((s) => s.id === snap.id), `${snap.id} is seen after its commit`);
        other.close();
        live = [...live, snap];
        await syncCatalog(full, live, read);
        assert.equal(dump(staged), dump(full), `after ${snap.id}`);
      }
      full.close();
      staged.close();
    });
  }

  test('nothing is staged, and nothing held, when more than the new snapshot is to be read, it is older, there already or refused', async () => {
    const db = openCatalog(path.join(dir, 'refusals.sqlite'))!;
    const s = (n: number): LiveSnapshot => ({ id: `s${n}`, finishedAt: at(n) });
    const stage = (live: LiveSnapshot[], snap: LiveSnapshot, reader = (onEntry: (e: Entry) => void) => read(snap.id, onEntry)) =>
      stageSnapshot(db, live, snap, reader, null);
    // s1 listed but not catalogued: two to read.
    assert.equal(await stage([s(1)], s(2)), false);
    assert.ok(!db.inTransaction);
    await syncCatalog(db, [s(3)], read);
    assert.equal(await stage([s(3)], s(2)), false, 'older than the newest catalogued');
    assert.equal(await stage([], s(3)), false, 'there already');
    const before = dump(db);
    const refused = (): Promise<void> => Promise.reject(new SnapshotInputError('snapshot s4: index: refused as damaged or hostile'));
    assert.equal(await stage([s(3)], s(4), refused), false, 'an index refused');
    assert.ok(!db.inTransaction);
    assert.equal(dump(db), before, 'a refused index is not marked unreadable before the snapshot is listed');
    await assert.rejects(stage([s(3)], s(5), () => Promise.reject(new Error('disk on fire'))), /disk on fire/);
    assert.ok(!db.inTransaction);
    db.close();
  });

  test('stageAccountCatalog: other updates of the catalog wait for the commit; a write lock held elsewhere is not waited for', async () => {
    const dataDir = fs.mkdtempSync(path.join(dir, 'data-'));
    let listed: LiveSnapshot[] = [];
    const ctx = { dataDir, store: { snapshots: { list: () => listed } } } as unknown as Context;
    const d = { id: 7 } as DestinationRecord;
    const file = catalogFile(dataDir, d.id, 'acct');
    const reader = (id: string) => (onEntry: (e: Entry) => void) => read(id, onEntry);

    const staged = await stageAccountCatalog(ctx, d, 'acct', { id: 's1', finishedAt: at(1) }, reader('s1'), null);
    assert.ok(staged);
    // An update asked for meanwhile (a search) waits instead of blocking on the write lock.
    let synced = false;
    const sync = syncAccountCatalog(ctx, d, 'acct', undefined).then(() => { synced = true; });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(synced, false, 'the update waits for the staged transaction');
    listed = [{ id: 's1', finishedAt: at(1) }];
    staged.commit();
    await sync;
    const db = new Database(file, { readonly: true });
    assert.deepEqual(catalogSnapshots(db).map((s) => s.id), ['s1']);
    db.close();

    // Aborted: nothing of s2 stays.
    const aborted = await stageAccountCatalog(ctx, d, 'acct', { id: 's2', finishedAt: at(2) }, reader('s2'), null);
    assert.ok(aborted);
    aborted.abort();
    const db2 = new Database(file, { readonly: true });
    assert.deepEqual(catalogSnapshots(db2).map((s) => s.id), ['s1']);
    db2.close();

    // Another process's write transaction: null at once, nothing held.
    const holder = new Database(file);
    holder.exec('BEGIN IMMEDIATE');
    assert.equal(await stageAccountCatalog(ctx, d, 'acct', { id: 's2', finishedAt: at(2) }, reader('s2'), null), null);
    holder.exec('ROLLBACK');
    holder.close();
    const again = await stageAccountCatalog(ctx, d, 'acct', { id: 's2', finishedAt: at(2) }, reader('s2'), null);
    assert.ok(again, 'staged once the lock is free');
    listed = [...listed, { id: 's2', finishedAt: at(2) }];
    again.commit();
    const db3 = new Database(file, { readonly: true });
    assert.deepEqual(catalogSnapshots(db3).map((s) => s.id), ['s1', 's2']);
    db3.close();
  });
});
