import type Database from 'better-sqlite3';
import type { Context } from './context.js';
import type { DestinationRecord } from '../store/destinations.js';
import type { Destination } from '../destinations/types.js';
import { withDriver } from './destinations.js';
import { layout } from '../engine/snapshot-layout.js';
import { eachIndexEntry } from '../engine/snapshot-index.js';
import { catalogFile, catalogSnapshots, openCatalog, unreadableSnapshots } from '../engine/catalog/path-catalog.js';
import { stageSnapshot, syncCatalog } from '../engine/catalog/catalog-sync.js';
import { RunAppend } from '../engine/catalog/run-append.js';
import type { Entry } from '../engine/format/entry.js';
import type { SnapshotChanges } from '../engine/catalog/snapshot-changes.js';

/**
 * Keeps each account's path catalog (engine/catalog) in line with its snapshots: updated
 * right after a backup commits its catalog row, and brought up to date (or built) before a
 * question when anything changed meanwhile (a reindex, a deletion, an older version of
 * Tidemark). One update per catalog at a time in this process; other processes wait on
 * the catalog's write lock.
 */
const running = new Map<string, { promise: Promise<void>; done: number; total: number; maxReads: number }>();

export interface CatalogProgress { done: number; total: number }

/** Brings the catalog of `account` on `d` up to date, reading new indexes over `driver` (or a connection of its own). */
export function syncAccountCatalog(ctx: Context, d: DestinationRecord, account: string, driver?: Destination, maxReads = Infinity,
  changes: SnapshotChanges | null = null): Promise<void> {
  const file = catalogFile(ctx.dataDir, d.id, account);
  const already = running.get(file);
  if (already) {
    // One update at a time; a narrower one running (after a backup) is followed by this one.
    if (already.maxReads >= maxReads) return already.promise;
    return already.promise.catch(() => {}).then(() => syncAccountCatalog(ctx, d, account, driver, maxReads, changes));
  }
  const state = { promise: Promise.resolve(), done: 0, total: 0, maxReads };
  state.promise = (async () => {
    const live = ctx.store.snapshots.list({ destinationId: d.id, account }).map((s) => ({ id: s.id, finishedAt: s.finishedAt }));
    const db = openCatalog(file)!;
    try {
      const work = (dest: Destination): Promise<number> => syncCatalog(db, live,
        (id, onEntry) => eachIndexEntry(dest, layout.snapshotDir(account, id), onEntry),
        (done, total) => { state.done = done; state.total = total; }, maxReads, changes);
      if (driver) await work(driver);
      else if (needsWork(db, live.map((s) => s.id))) await withDriver(ctx, d, work);
    } finally {
      db.close();
    }
  })().finally(() => running.delete(file));
  running.set(file, state);
  return state.promise;
}

/** Whether the catalog lacks a snapshot of the list, or holds one no longer in it (no connection opened otherwise). */
function needsWork(db: Database.Database, ids: string[]): boolean {
  const known = new Set([...catalogSnapshots(db).map((s) => s.id), ...unreadableSnapshots(db)]);
  return ids.length !== known.size || ids.some((id) => !known.has(id));
}

/** How far the running update of a catalog is, if one runs. */
export function catalogProgress(ctx: Context, destinationId: number, account: string): CatalogProgress | null {
  const s = running.get(catalogFile(ctx.dataDir, destinationId, account));
  return s ? { done: s.done, total: s.total } : null;
}

/**
 * Right after a backup's catalog row: adds the new snapshot to the account's catalog over
 * the backup's own connection (a few seconds for 200,000 files: `node dist/bench/search-scale.js`).
 * `changes` (what the backup found changed) spares reading the snapshot's index again.
 * Only when that one snapshot is all there is to read: a catalog that lacks more (its
 * account's snapshots were made before catalogs existed, or found by a reindex) is built at
 * the first question instead of lengthening the backup. Never fails the backup.
 */
export async function catalogAfterBackup(ctx: Context, d: DestinationRecord, account: string, driver: Destination,
  log: (message: string) => void, changes: SnapshotChanges | null = null): Promise<void> {
  try {
    await syncAccountCatalog(ctx, d, account, driver, 1, changes);
  } catch (err) {
    log(`the search index was not updated (${(err as Error).message}); it is brought up to date at the next search`);
  }
}

/** A snapshot's catalog rows written in a transaction that waits for the snapshot to be listed. */
export interface StagedCatalog {
  /** After the snapshot's catalog row is written. */
  commit(): void;
  /** The backup did not commit. */
  abort(): void;
}

/**
 * While a backup flushes its data (before its manifest): adds the new snapshot to the
 * account's catalog from its index (or from `changes`) in a transaction left open, which
 * the caller commits right after the snapshot's catalog row, instead of reading the index
 * once the run is over (catalogAfterBackup). null, with nothing held, when this cannot be
 * done at once (another update of this catalog runs, another process holds its write lock,
 * more than this snapshot is missing, the index is refused): the caller then does as before.
 * Never throws.
 */
export async function stageAccountCatalog(ctx: Context, d: DestinationRecord, account: string, snap: { id: string; finishedAt: string },
  read: (onEntry: (e: Entry) => void) => Promise<void>, changes: SnapshotChanges | null): Promise<StagedCatalog | null> {
  const file = catalogFile(ctx.dataDir, d.id, account);
  if (running.has(file)) return null;
  let settle = (): void => {};
  // Other updates of this catalog in this process wait for the end of the transaction: a
  // synchronous BEGIN beside it would block the event loop that is to commit it.
  const state = { promise: new Promise<void>((resolve) => { settle = resolve; }), done: 0, total: 1, maxReads: 1 };
  running.set(file, state);
  let db: Database.Database | null = null;
  const end = (): void => {
    try { if (db?.inTransaction) db.exec('ROLLBACK'); } catch { /* closed below */ }
    try { db?.close(); } catch { /* nothing held */ }
    db = null;
    if (running.get(file) === state) running.delete(file);
    settle();
  };
  try {
    const live = ctx.store.snapshots.list({ destinationId: d.id, account }).map((s) => ({ id: s.id, finishedAt: s.finishedAt }));
    db = openCatalog(file)!;
    // A write lock held by another process is not waited for here (the backup's commit would wait with it).
    db.pragma('busy_timeout = 0');
    if (!(await stageSnapshot(db, live, snap, read, changes))) { end(); return null; }
  } catch {
    end();
    return null;
  }
  const staged = db;
  return {
    commit: () => {
      try { staged.exec('COMMIT'); } finally { end(); }
    },
    abort: end,
  };
}

/** The page cache of the connection that writes a first snapshot's rows during its backup, in KiB. */
export const RUN_CATALOG_CACHE_KIB = 2000;

/**
 * The catalog connection of a run's rows (RunAppend). Its short transactions never wait for
 * another process's write lock, and never checkpoint (two fsyncs on the event loop in the
 * middle of the run): closing does. Its page cache is SQLite's default 2 MB, not the 16 MB
 * better-sqlite3 sets: the rows go in in walk order, mostly to the right edge of each tree, and
 * the cache is held beside the backup's own peak (a first backup of 200,000 files: root
 * 162-169 MiB with 16 MB, 146-150 MiB without the run's rows; 200,000 rows alone take the same
 * time with either cache).
 */
export function openRunCatalog(file: string): Database.Database {
  const db = openCatalog(file)!;
  try {
    db.pragma('busy_timeout = 0');
    db.pragma('wal_autocheckpoint = 0');
    db.pragma(`cache_size = -${RUN_CATALOG_CACHE_KIB}`);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/** A first snapshot's catalog rows written as its backup runs (RunAppend), on a connection of its own. */
export interface RunCatalog {
  /** One record of the index, as it is written. */
  add(e: Entry): void;
  /**
   * While the backup's data is flushed: the rest of the rows and the totals, and what publishes
   * them once the snapshot is listed; null (nothing left held) when the rows were given up or
   * forgotten meanwhile: the caller then adds the snapshot from its index as before.
   */
  stage(finishedAt: string): StagedCatalog | null;
  /** The backup failed before its commit: the rows go. */
  abandon(): void;
}

/**
 * When a backup starts and no snapshot of the account is listed on the destination: its
 * catalog rows are written during the run (RunAppend). null when that cannot be done at
 * once (a snapshot is listed, another update of this catalog runs here, its write lock is
 * held elsewhere): the snapshot is then added at the flush as before. Never throws.
 */
export function startRunCatalog(ctx: Context, d: DestinationRecord, account: string, snap: { id: string; startedAt: string }): RunCatalog | null {
  const file = catalogFile(ctx.dataDir, d.id, account);
  let db: Database.Database | null = null;
  let run: RunAppend | null = null;
  try {
    if (running.has(file) || ctx.store.snapshots.list({ destinationId: d.id, account }).length > 0) return null;
    db = openRunCatalog(file);
    run = RunAppend.start(db, [], snap.id, snap.startedAt);
  } catch {
    run = null;
  }
  if (!run || !db) {
    try { db?.close(); } catch { /* nothing held */ }
    return null;
  }
  const rows = run;
  const conn = db;
  let open = true;
  const close = (): void => {
    if (!open) return;
    open = false;
    try { conn.close(); } catch { /* nothing held */ }
  };
  const abandon = (): void => {
    if (!open) return;
    rows.abandon();
    close();
  };
  return {
    add: (e) => rows.add(e),
    stage: (finishedAt) => {
      if (!open) return null;
      if (!rows.finish(finishedAt)) { abandon(); return null; }
      // The rows into the database file now, while the data is flushed: closing after the
      // snapshot is listed then has only the publishing UPDATE left to copy.
      try { conn.pragma('wal_checkpoint(PASSIVE)'); } catch { /* closing does it */ }
      return {
        commit: () => {
          try {
            if (!rows.publish()) throw new Error('the rows written during the run were forgotten meanwhile');
          } finally { close(); }
        },
        abort: abandon,
      };
    },
    abandon,
  };
}
