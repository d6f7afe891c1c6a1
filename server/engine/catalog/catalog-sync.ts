import type Database from 'better-sqlite3';
import type { Entry } from '../format/entry.js';
import { SnapshotInputError } from '../untrusted-input.js';
import { DestinationError } from '../../destinations/types.js';
import { appendChanges, appendSnapshot, clearCatalog, forgetSnapshots, markUnreadable } from './path-catalog.js';
import type { SnapshotChanges } from './snapshot-changes.js';

export interface LiveSnapshot { id: string; finishedAt: string }

export type IndexReader = (id: string, onEntry: (e: Entry) => void) => Promise<void>;

const order = (a: LiveSnapshot, b: LiveSnapshot): number =>
  (a.finishedAt < b.finishedAt ? -1 : a.finishedAt > b.finishedAt ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * Brings a catalog in line with the snapshots that exist (`live`): forgets those gone,
 * appends the new ones that are newer than everything catalogued (the usual case: a backup
 * just finished), and starts over when one turns up older than the newest catalogued (a
 * reindex found it, or it was handed over), since versions are intervals in time order.
 * Returns how many snapshots were read, or -1 when more than `maxReads` were to be read
 * (nothing is done then: the work is left for later). `changes`: what a backup that just
 * finished found changed in its snapshot, which is then added without reading its index
 * (when the catalog's newest snapshot is the one it was compared with).
 */
export async function syncCatalog(db: Database.Database, live: readonly LiveSnapshot[], read: IndexReader,
  onProgress: (done: number, total: number) => void = () => {}, maxReads = Infinity, changes: SnapshotChanges | null = null): Promise<number> {
  const liveIds = new Set(live.map((s) => s.id));
  const known = db.prepare('SELECT id, finished_at AS finishedAt, complete FROM snaps').all() as (LiveSnapshot & { complete: number })[];
  const gone = known.filter((s) => !liveIds.has(s.id) || s.complete === 0).map((s) => s.id);
  if (gone.length > 0) forgetSnapshots(db, gone);
  const kept = known.filter((s) => liveIds.has(s.id) && s.complete !== 0).sort(order);
  const keptIds = new Set(kept.map((s) => s.id));
  let missing = live.filter((s) => !keptIds.has(s.id)).sort(order);
  if (missing.length === 0) return 0;
  const newest = kept[kept.length - 1];
  const rebuild = newest !== undefined && missing.some((s) => order(s, newest) <= 0);
  if ((rebuild ? live.length : missing.length) > maxReads) return -1;
  if (rebuild) {
    clearCatalog(db);
    missing = [...live].sort(order);
  }
  let done = 0;
  onProgress(done, missing.length);
  for (const s of missing) {
    try {
      if (!rebuild && changes?.id === s.id && appendChanges(db, s, changes) !== 'mismatch') {
        onProgress(++done, missing.length);
        continue;
      }
      await appendSnapshot(db, s, (onEntry) => read(s.id, onEntry));
    } catch (err) {
      // Refused as damaged, or its index is missing: it holds nothing searchable (named so).
      if (!(err instanceof SnapshotInputError) && !(err instanceof DestinationError && err.code === 'not-found')) throw err;
      markUnreadable(db, s);
    }
    onProgress(++done, missing.length);
  }
  return done;
}

/**
 * For a backup about to commit `snap` (not yet in `live`, the snapshots listed): when it is
 * the one snapshot the catalog lacks and newer than every one it holds, forgets those gone
 * and adds it in a write transaction left open, and returns true: the caller commits once
 * the snapshot is listed, or rolls back. So the catalog's work runs while the backup's data
 * is flushed, and the catalog still never holds a snapshot before it is listed. False, with
 * nothing open, when more is to be done (a rebuild, other snapshots to read), the index is
 * refused, or the snapshot is there already: the catalog is then brought up to date as before.
 */
export async function stageSnapshot(db: Database.Database, live: readonly LiveSnapshot[], snap: LiveSnapshot,
  read: (onEntry: (e: Entry) => void) => Promise<void>, changes: SnapshotChanges | null): Promise<boolean> {
  const all = [...live.filter((s) => s.id !== snap.id), snap];
  const liveIds = new Set(all.map((s) => s.id));
  const known = db.prepare('SELECT id, finished_at AS finishedAt, complete FROM snaps').all() as (LiveSnapshot & { complete: number })[];
  const kept = known.filter((s) => liveIds.has(s.id) && s.complete !== 0).sort(order);
  const missing = all.filter((s) => !kept.some((k) => k.id === s.id));
  const newest = kept[kept.length - 1];
  if (missing.length !== 1 || missing[0]!.id !== snap.id || (newest !== undefined && order(snap, newest) <= 0)) return false;
  const gone = known.filter((s) => !liveIds.has(s.id) || s.complete === 0).map((s) => s.id);
  if (gone.length > 0) forgetSnapshots(db, gone);
  try {
    if (changes?.id === snap.id) {
      const r = appendChanges(db, snap, changes, false);
      if (r !== 'mismatch') return r && db.inTransaction;
    }
    return await appendSnapshot(db, snap, read, false) && db.inTransaction;
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    if (err instanceof SnapshotInputError || (err instanceof DestinationError && err.code === 'not-found')) return false;
    throw err;
  }
}
