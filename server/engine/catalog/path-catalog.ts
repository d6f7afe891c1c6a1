import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { HASH_BYTES, type Entry } from '../format/entry.js';
import { foldBytes } from './name-match.js';
import { parentOf, type BytePath } from '../../util/byte-path.js';
import { sqliteOptions } from '../../store/sqlite-binding.js';
import type { SnapshotChanges } from './snapshot-changes.js';

/**
 * The path catalog of one account on one destination (a "series"): every version of every
 * path the account's snapshots there hold, each stored once as an interval of snapshots
 * (`first_seq`..`last_seq`), so a file that never changes is one row however many
 * snapshots hold it. A snapshot holds a version when its seq lies in the interval; seqs
 * only grow (a deleted snapshot's seq is never given again), so removing a snapshot never
 * rewrites the rows of the others. Search, versions of a path and what changed are all
 * answered from these rows (catalog-query.ts).
 *
 * One SQLite file per series under the data directory (root only): an account's catalog
 * is as large as its file list, and keeping it out of the state database keeps that small
 * and its write lock free while a catalog is filled. The catalog is derived data: it is
 * rebuilt from the destination's indexes whenever it does not match the snapshot list.
 *
 * A folder stays one version while it exists (what changes is what it holds), so its own
 * time and mode as each snapshot holds them are kept beside it: a `folder_times` row says
 * what they are from snapshot `seq` on, written only when they differ from the snapshot
 * before (the file browser shows a folder's time, catalog-folder.ts). A large folder's
 * number of entries (and of folders among them) is kept per snapshot in `folder_counts`:
 * counting 100,000 rows is the one costly part of showing its first page.
 */
export const CATALOG_FORMAT = '3';

/** From this many entries on, a folder's counts are kept (folder_counts); a smaller one is counted when asked. */
export const LARGE_FOLDER = 1000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snaps (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, finished_at TEXT NOT NULL,
  base_seq INTEGER, entries INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0,
  added INTEGER NOT NULL DEFAULT 0, changed INTEGER NOT NULL DEFAULT 0, removed INTEGER NOT NULL DEFAULT 0,
  added_bytes INTEGER NOT NULL DEFAULT 0, changed_bytes INTEGER NOT NULL DEFAULT 0, removed_bytes INTEGER NOT NULL DEFAULT 0,
  complete INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS paths (id INTEGER PRIMARY KEY, path BLOB NOT NULL UNIQUE, folded BLOB NOT NULL, name_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
  id INTEGER PRIMARY KEY, path_id INTEGER NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,
  kind TEXT NOT NULL, mode INTEGER NOT NULL, size INTEGER NOT NULL, mtime_sec REAL NOT NULL, mtime_nsec INTEGER NOT NULL,
  hash BLOB, link BLOB);
CREATE INDEX IF NOT EXISTS versions_by_path ON versions (path_id, first_seq);
CREATE TABLE IF NOT EXISTS folder_times (
  version_id INTEGER NOT NULL, seq INTEGER NOT NULL, mode INTEGER NOT NULL, mtime_sec REAL NOT NULL, mtime_nsec INTEGER NOT NULL,
  PRIMARY KEY (version_id, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS folder_counts (
  seq INTEGER NOT NULL, path BLOB NOT NULL, total INTEGER NOT NULL, folders INTEGER NOT NULL, PRIMARY KEY (seq, path)) WITHOUT ROWID;
`;

export interface CatalogSnapshot {
  seq: number; id: string; finishedAt: string; baseSeq: number | null; entries: number; bytes: number;
  added: number; changed: number; removed: number; addedBytes: number; changedBytes: number; removedBytes: number;
}

export interface VersionRow {
  id: number; pathId: number; path: string; firstSeq: number; lastSeq: number; kind: Entry['kind']; mode: number; size: number;
  mtimeSec: number; mtimeNsec: number; hash: Buffer | null; link: string;
}

interface RawVersion {
  id: number; path_id: number; path: Buffer; first_seq: number; last_seq: number; kind: string; mode: number; size: number;
  mtime_sec: number; mtime_nsec: number; hash: Buffer | null; link: Buffer | null;
}

export const versionOf = (r: RawVersion): VersionRow => ({
  id: r.id, pathId: r.path_id, path: r.path.toString('latin1'), firstSeq: r.first_seq, lastSeq: r.last_seq, kind: r.kind as Entry['kind'],
  mode: r.mode, size: r.size, mtimeSec: r.mtime_sec, mtimeNsec: r.mtime_nsec, hash: r.hash, link: r.link ? r.link.toString('latin1') : '',
});

/** The file of one series: `<dataDir>/catalog/<destination id>/<account>.sqlite`. */
export const catalogFile = (dataDir: string, destinationId: number, account: string): string =>
  path.join(dataDir, 'catalog', String(destinationId), `${account}.sqlite`);

/** SQLite's answers for a file that is not a database, or a damaged one. */
const DAMAGED = new Set(['SQLITE_CORRUPT', 'SQLITE_NOTADB']);

/**
 * Opens (creating) a catalog; a file of another format is emptied and built again, and a
 * damaged one (a power cut while it was new, a bad sector) is removed and made anew: the
 * catalog is derived data, rebuilt from the indexes, and a damaged file must not fail every
 * search of the account for ever. Read-only, a damaged file is as good as none (null).
 */
export function openCatalog(file: string, opts: { readonly?: boolean } = {}): Database.Database | null {
  if (opts.readonly && !fs.existsSync(file)) return null;
  try {
    return openCatalogFile(file, opts);
  } catch (err) {
    if (!DAMAGED.has((err as { code?: string }).code ?? '')) throw err;
    if (opts.readonly) return null;
    for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
    return openCatalogFile(file, opts);
  }
}

function openCatalogFile(file: string, opts: { readonly?: boolean }): Database.Database {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const fresh = !opts.readonly && !fs.existsSync(file);
  const db = new Database(file, { ...sqliteOptions(), ...(opts.readonly ? { readonly: true } : {}) });
  try {
    if (!opts.readonly) {
      fs.chmodSync(file, 0o600);
      // A new file is switched to WAL and given its tables with no fsync (synchronous NORMAL
      // still syncs the rollback journal, the folder and the file for the switch: three
      // fsyncs that, beside a backup's flush, held the event loop for half a second). A cut
      // before anything reached the disk leaves a damaged file, made anew above.
      db.pragma(fresh ? 'synchronous = OFF' : 'synchronous = NORMAL');
      db.pragma('journal_mode = WAL');
    }
    // A reader never waits long: WAL lets it read beside a writer, and a page must not hang on a catalog.
    db.pragma(opts.readonly ? 'busy_timeout = 1000' : 'busy_timeout = 60000');
    // The first read of the file: a damaged one fails here, not in the middle of some later work.
    db.prepare('SELECT count(*) FROM sqlite_schema').get();
    if (opts.readonly) return db;
    db.exec(SCHEMA);
    const format = (db.prepare("SELECT value FROM meta WHERE key = 'format'").get() as { value: string } | undefined)?.value;
    if (format !== CATALOG_FORMAT) {
      clearCatalog(db);
      db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('format', ?)").run(CATALOG_FORMAT);
    }
    if (fresh) db.pragma('synchronous = NORMAL');
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

const snapOf = (r: Record<string, unknown>): CatalogSnapshot => ({
  seq: r.seq as number, id: r.id as string, finishedAt: r.finished_at as string, baseSeq: r.base_seq as number | null,
  entries: r.entries as number, bytes: r.bytes as number, added: r.added as number, changed: r.changed as number, removed: r.removed as number,
  addedBytes: r.added_bytes as number, changedBytes: r.changed_bytes as number, removedBytes: r.removed_bytes as number,
});

/** The snapshots a catalog holds completely, oldest first. */
export function catalogSnapshots(db: Database.Database): CatalogSnapshot[] {
  return (db.prepare('SELECT * FROM snaps WHERE complete = 1 ORDER BY seq').all() as Record<string, unknown>[]).map(snapOf);
}

/**
 * Forgets snapshots that are gone, and the versions no remaining snapshot holds (rows
 * whose interval covers no catalogued seq). An unfinished append (its process died) goes too.
 */
export function forgetSnapshots(db: Database.Database, ids: readonly string[]): void {
  db.transaction(() => {
    const del = db.prepare('DELETE FROM snaps WHERE id = ?');
    for (const id of ids) del.run(id);
    db.exec('DELETE FROM snaps WHERE complete = 0');
    db.exec('DELETE FROM versions WHERE NOT EXISTS (SELECT 1 FROM snaps s WHERE s.complete = 1 AND s.seq BETWEEN versions.first_seq AND versions.last_seq)');
    db.exec('DELETE FROM paths WHERE NOT EXISTS (SELECT 1 FROM versions v WHERE v.path_id = paths.id)');
    db.exec('DELETE FROM folder_times WHERE NOT EXISTS (SELECT 1 FROM versions v WHERE v.id = folder_times.version_id)');
    db.exec('DELETE FROM folder_counts WHERE NOT EXISTS (SELECT 1 FROM snaps s WHERE s.seq = folder_counts.seq)');
  })();
}

export function clearCatalog(db: Database.Database): void {
  db.exec('DELETE FROM folder_counts; DELETE FROM folder_times; DELETE FROM versions; DELETE FROM paths; DELETE FROM snaps;');
}


/** `last_seq` of a version the newest catalogued snapshot still holds: it holds it until a later snapshot no longer does. */
export const OPEN = Number.MAX_SAFE_INTEGER;

interface BaseVersion { id: number; pathId: number; kind: string; mode: number; size: number; mtimeSec: number; mtimeNsec: number; hash: Buffer | null; link: Buffer | null; lastSeq: number; seen: boolean }

const sameVersion = (r: BaseVersion, e: Entry): boolean => {
  if (r.kind !== e.kind) return false;
  // A folder is the same folder whatever its time: what changes is what it holds.
  if (e.kind === 'd') return true;
  if (r.size !== e.size || r.mtimeSec !== e.mtimeSec || r.mtimeNsec !== e.mtimeNsec || r.mode !== e.mode) return false;
  if (r.hash && e.hash && !r.hash.equals(e.hash)) return false;
  return (r.link ? r.link.toString('latin1') : '') === e.link;
};

/**
 * Adds one snapshot at the end of a catalog from its index entries (streamed in),
 * comparing each path with the version the latest catalogued snapshot (the base) held,
 * read in one pass beforehand. Only what differs is written: a version the new snapshot
 * still holds stays open (`last_seq` OPEN), a changed or removed one is closed at the base.
 * Runs in one write transaction taken before the first entry arrives: another process
 * adding the same snapshot waits, then finds it there and does nothing. Returns false
 * when the snapshot was there already. `commit` false: the transaction is left open once
 * the rows are written (the caller commits or rolls back).
 */
export async function appendSnapshot(db: Database.Database, snap: { id: string; finishedAt: string },
  entries: (onEntry: (e: Entry) => void) => Promise<void>, commit = true): Promise<boolean> {
  db.exec('BEGIN IMMEDIATE');
  try {
    if (db.prepare('SELECT 1 FROM snaps WHERE id = ?').get(snap.id)) { db.exec('ROLLBACK'); return false; }
    const base = db.prepare('SELECT seq, entries, bytes FROM snaps WHERE complete = 1 ORDER BY seq DESC LIMIT 1').get() as { seq: number; entries: number; bytes: number } | undefined;
    const seq = Number(db.prepare('INSERT INTO snaps (id, finished_at, base_seq) VALUES (?, ?, ?)').run(snap.id, snap.finishedAt, base?.seq ?? null).lastInsertRowid);
    const held = new Map<string, BaseVersion>();
    if (base) {
      const rows = db.prepare(`SELECT p.path, v.id, v.path_id, v.kind, v.mode, v.size, v.mtime_sec, v.mtime_nsec, v.hash, v.link, v.last_seq
        FROM versions v JOIN paths p ON p.id = v.path_id WHERE v.first_seq <= ? AND v.last_seq >= ?`).raw(true);
      for (const r of rows.iterate(base.seq, base.seq) as Iterable<[Buffer, number, number, string, number, number, number, number, Buffer | null, Buffer | null, number]>) {
        held.set(r[0].toString('latin1'), { id: r[1], pathId: r[2], kind: r[3], mode: r[4], size: r[5], mtimeSec: r[6], mtimeNsec: r[7], hash: r[8], link: r[9], lastSeq: r[10], seen: false });
      }
      // A folder's time and mode as the base held them: the latest folder_times row up to the base, if any.
      const byId = new Map([...held.values()].filter((v) => v.kind === 'd').map((v) => [v.id, v]));
      const times = db.prepare(`SELECT t.version_id, t.mode, t.mtime_sec, t.mtime_nsec FROM folder_times t JOIN versions v ON v.id = t.version_id
        WHERE v.first_seq <= ? AND v.last_seq >= ? AND t.seq <= ? ORDER BY t.version_id, t.seq`).raw(true);
      for (const [id, mode, sec, nsec] of times.iterate(base.seq, base.seq, base.seq) as Iterable<[number, number, number, number]>) {
        const v = byId.get(id);
        if (v) { v.mode = mode; v.mtimeSec = sec; v.mtimeNsec = nsec; }
      }
    }
    const idOfPath = pathIds(db);
    const setLast = db.prepare('UPDATE versions SET last_seq = ? WHERE id = ?');
    const setFolderTime = db.prepare('INSERT OR REPLACE INTO folder_times (version_id, seq, mode, mtime_sec, mtime_nsec) VALUES (?, ?, ?, ?, ?)');
    const addVersion = versionAdder(db);
    const n = { entries: 0, bytes: 0, added: 0, changed: 0, addedBytes: 0, changedBytes: 0, keptOld: 0, keptOldBytes: 0 };
    const children: FolderCounts = new Map();
    await entries((e) => {
      if (e.path === '') return;
      n.entries++; n.bytes += e.size;
      countInFolder(children, e);
      const old = held.get(e.path);
      let pathId: number;
      if (old) {
        old.seen = true;
        n.keptOld++; n.keptOldBytes += old.size;
        if (sameVersion(old, e)) {
          // Open again a version a deleted snapshot had closed.
          if (old.lastSeq !== OPEN) setLast.run(OPEN, old.id);
          if (e.kind === 'd' && (old.mode !== e.mode || old.mtimeSec !== e.mtimeSec || old.mtimeNsec !== e.mtimeNsec)) {
            setFolderTime.run(old.id, seq, e.mode, e.mtimeSec, e.mtimeNsec);
          }
          return;
        }
        if (old.lastSeq !== base!.seq) setLast.run(base!.seq, old.id);
        pathId = old.pathId;
        n.changed++; n.changedBytes += e.size;
      } else {
        pathId = idOfPath(e.path);
        n.added++; n.addedBytes += e.size;
      }
      addVersion(pathId, seq, e);
    });
    addFolderCounts(db, seq, children);
    // What the base held and the new snapshot does not: removed, closed at the base.
    for (const old of held.values()) if (!old.seen && old.lastSeq !== base!.seq) setLast.run(base!.seq, old.id);
    db.prepare(`UPDATE snaps SET entries = ?, bytes = ?, added = ?, changed = ?, removed = ?, added_bytes = ?, changed_bytes = ?, removed_bytes = ?, complete = 1
      WHERE seq = ?`).run(n.entries, n.bytes, n.added, n.changed, base ? base.entries - n.keptOld : 0, n.addedBytes, n.changedBytes,
      base ? base.bytes - n.keptOldBytes : 0, seq);
    if (commit) db.exec('COMMIT');
    return true;
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw err;
  }
}

/**
 * Adds one snapshot at the end of a catalog from what the backup found changed against the
 * snapshot it was built on (snapshot-changes.ts), to the same rows appendSnapshot writes from
 * the whole index: only the candidates and the removed paths are looked up, each by its path.
 * Every version the base held is first opened again at once (one statement); those of
 * changed and removed paths are then closed at the base. 'mismatch' (nothing written) when
 * the catalog's newest snapshot is not that base, or holds other totals than the base's
 * index: the caller reads the index then. False when the snapshot was there already.
 * `commit` false: as appendSnapshot.
 */
export function appendChanges(db: Database.Database, snap: { id: string; finishedAt: string }, changes: SnapshotChanges, commit = true): boolean | 'mismatch' {
  db.exec('BEGIN IMMEDIATE');
  try {
    if (db.prepare('SELECT 1 FROM snaps WHERE id = ?').get(snap.id)) { db.exec('ROLLBACK'); return false; }
    const base = db.prepare('SELECT seq, id, entries, bytes FROM snaps WHERE complete = 1 ORDER BY seq DESC LIMIT 1').get() as
      { seq: number; id: string; entries: number; bytes: number } | undefined;
    if (!base || base.id !== changes.baseId || base.entries !== changes.baseEntries || base.bytes !== changes.baseBytes
      || db.prepare('SELECT 1 FROM snaps WHERE complete = 0 LIMIT 1').get()) {
      db.exec('ROLLBACK');
      return 'mismatch';
    }
    const seq = Number(db.prepare('INSERT INTO snaps (id, finished_at, base_seq) VALUES (?, ?, ?)').run(snap.id, snap.finishedAt, base.seq).lastInsertRowid);
    db.prepare('UPDATE versions SET last_seq = ? WHERE first_seq <= ? AND last_seq >= ? AND last_seq <> ?').run(OPEN, base.seq, base.seq, OPEN);
    const heldAt = db.prepare(`SELECT v.id, v.path_id, v.kind, v.mode, v.size, v.mtime_sec, v.mtime_nsec, v.hash, v.link
      FROM paths p JOIN versions v ON v.path_id = p.id WHERE p.path = ? AND v.first_seq <= ? AND v.last_seq >= ?`).raw(true);
    const folderTime = db.prepare('SELECT mode, mtime_sec, mtime_nsec FROM folder_times WHERE version_id = ? AND seq <= ? ORDER BY seq DESC LIMIT 1').raw(true);
    const held = (p: BytePath): BaseVersion | null => {
      const r = heldAt.get(Buffer.from(p, 'latin1'), base.seq, base.seq) as [number, number, string, number, number, number, number, Buffer | null, Buffer | null] | undefined;
      if (!r) return null;
      const v: BaseVersion = { id: r[0], pathId: r[1], kind: r[2], mode: r[3], size: r[4], mtimeSec: r[5], mtimeNsec: r[6], hash: r[7], link: r[8], lastSeq: OPEN, seen: true };
      if (v.kind === 'd') {
        const t = folderTime.get(v.id, base.seq) as [number, number, number] | undefined;
        if (t) { v.mode = t[0]; v.mtimeSec = t[1]; v.mtimeNsec = t[2]; }
      }
      return v;
    };
    const idOfPath = pathIds(db);
    const setLast = db.prepare('UPDATE versions SET last_seq = ? WHERE id = ?');
    const setFolderTime = db.prepare('INSERT OR REPLACE INTO folder_times (version_id, seq, mode, mtime_sec, mtime_nsec) VALUES (?, ?, ?, ?, ?)');
    const addVersion = versionAdder(db);
    let added = 0; let changed = 0; let addedBytes = 0; let changedBytes = 0;
    for (const e of changes.candidates) {
      const old = held(e.path);
      let pathId: number;
      if (old) {
        if (sameVersion(old, e)) {
          if (e.kind === 'd' && (old.mode !== e.mode || old.mtimeSec !== e.mtimeSec || old.mtimeNsec !== e.mtimeNsec)) {
            setFolderTime.run(old.id, seq, e.mode, e.mtimeSec, e.mtimeNsec);
          }
          continue;
        }
        setLast.run(base.seq, old.id);
        pathId = old.pathId;
        changed++; changedBytes += e.size;
      } else {
        pathId = idOfPath(e.path);
        added++; addedBytes += e.size;
      }
      addVersion(pathId, seq, e);
    }
    for (const p of changes.removed) {
      const old = held(p);
      if (old) setLast.run(base.seq, old.id);
    }
    const addCount = db.prepare('INSERT OR REPLACE INTO folder_counts (seq, path, total, folders) VALUES (?, ?, ?, ?)');
    for (const [dir, total, folders] of changes.largeFolders) addCount.run(seq, Buffer.from(dir, 'latin1'), total, folders);
    const keptOld = changes.entries - added;
    db.prepare(`UPDATE snaps SET entries = ?, bytes = ?, added = ?, changed = ?, removed = ?, added_bytes = ?, changed_bytes = ?, removed_bytes = ?, complete = 1
      WHERE seq = ?`).run(changes.entries, changes.bytes, added, changed, base.entries - keptOld, addedBytes, changedBytes,
      base.bytes - changes.keptBaseBytes, seq);
    if (commit) db.exec('COMMIT');
    return true;
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw err;
  }
}

/**
 * Adds a version of `e` at path `pathId`, open from snapshot `seq` on, with its values as the
 * index holds them (encodeEntry: unsigned mode and nanoseconds, a hash only of its length):
 * the same row whether `e` was read back from an index or is on its way into one (RunAppend).
 */
export function versionAdder(db: Database.Database): (pathId: number, seq: number, e: Entry) => void {
  const add = db.prepare(`INSERT INTO versions (path_id, first_seq, last_seq, kind, mode, size, mtime_sec, mtime_nsec, hash, link)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  return (pathId, seq, e) => {
    add.run(pathId, seq, OPEN, e.kind, e.mode >>> 0, e.size, e.mtimeSec, e.mtimeNsec >>> 0, e.hash && e.hash.length === HASH_BYTES ? e.hash : null,
      e.link === '' ? null : Buffer.from(e.link, 'latin1'));
  };
}

/** Entries and folders among them, per folder of a snapshot. */
export type FolderCounts = Map<BytePath, { total: number; folders: number }>;

/** Counts `e` in its folder. */
export function countInFolder(children: FolderCounts, e: Entry): void {
  const parent = parentOf(e.path);
  const c = children.get(parent);
  if (c) { c.total++; if (e.kind === 'd') c.folders++; } else children.set(parent, { total: 1, folders: e.kind === 'd' ? 1 : 0 });
}

/** Keeps the counts of snapshot `seq`'s large folders (LARGE_FOLDER). */
export function addFolderCounts(db: Database.Database, seq: number, children: FolderCounts): void {
  const addCount = db.prepare('INSERT OR REPLACE INTO folder_counts (seq, path, total, folders) VALUES (?, ?, ?, ?)');
  for (const [dir, c] of children) if (c.total >= LARGE_FOLDER) addCount.run(seq, Buffer.from(dir, 'latin1'), c.total, c.folders);
}

/** Looks up a path's id in the catalog, adding the path (with its folded form for search) when it is new. */
export function pathIds(db: Database.Database): (path: BytePath) => number {
  const find = db.prepare('SELECT id FROM paths WHERE path = ?').pluck();
  const add = db.prepare('INSERT INTO paths (path, folded, name_at) VALUES (?, ?, ?)');
  return (path) => {
    const raw = Buffer.from(path, 'latin1');
    const known = find.get(raw) as number | undefined;
    if (known !== undefined) return known;
    const folded = foldBytes(path);
    return Number(add.run(raw, Buffer.from(folded, 'latin1'), folded.lastIndexOf('/') + 1).lastInsertRowid);
  };
}

/** A snapshot whose index was refused (damaged or hostile): catalogued as holding nothing searchable, and named as such. */
export function markUnreadable(db: Database.Database, snap: { id: string; finishedAt: string }): void {
  db.prepare('INSERT OR IGNORE INTO snaps (id, finished_at, complete) VALUES (?, ?, 2)').run(snap.id, snap.finishedAt);
}

/** The ids of snapshots whose index could not be read into the catalog. */
export function unreadableSnapshots(db: Database.Database): string[] {
  return db.prepare('SELECT id FROM snaps WHERE complete = 2').pluck().all() as string[];
}
