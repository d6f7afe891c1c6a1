import type Database from 'better-sqlite3';
import type { Entry } from '../format/entry.js';
import { addFolderCounts, countInFolder, forgetSnapshots, pathIds, versionAdder, type FolderCounts } from './path-catalog.js';

/** Records written to the catalog in one short write transaction. */
const BATCH = 1000;
/** Records held while another process keeps the catalog's write lock; past this the run's rows are given up. */
const MAX_PENDING = 50_000;

/**
 * The catalog rows of a first snapshot (the catalog holds no snapshot it builds on), written
 * while its backup runs, from the records as they go into the index: after the last file
 * only the totals are left, instead of reading the whole index back and adding it while the
 * data is flushed. The rows go in short write transactions (no write lock is held across the
 * run) under a `snaps` row with `complete = 0`, which no question counts (every query keeps
 * to the seqs of complete snapshots); `publish`, called once the snapshot is listed, marks it
 * complete. A catalog update elsewhere meanwhile forgets an unfinished append with all its
 * rows (forgetSnapshots): `finish` and `publish` then say false and the caller adds the
 * snapshot from its index as before. Rows are exactly those appendSnapshot writes without a
 * base.
 */
export class RunAppend {
  private pending: Entry[] = [];
  private written = 0;
  private entries = 0;
  private bytes = 0;
  private readonly children: FolderCounts = new Map();
  private failed = false;
  private readonly idOfPath: (path: string) => number;
  private readonly addVersion: ReturnType<typeof versionAdder>;

  private constructor(private readonly db: Database.Database, private readonly seq: number, private readonly id: string) {
    this.idOfPath = pathIds(db);
    this.addVersion = versionAdder(db);
  }

  /**
   * Starts the rows of snapshot `id` in a catalog opened for it (a busy timeout of 0: a write
   * lock held elsewhere is not waited for) when no snapshot of its series is listed (`live`),
   * after forgetting every one the catalog still holds. null, with nothing written, when one
   * is listed (the snapshot is no first one: the catalog adds it as before), the catalog
   * already holds `id`, or its write lock is taken.
   */
  static start(db: Database.Database, live: readonly string[], id: string, startedAt: string): RunAppend | null {
    if (live.length > 0) return null;
    try {
      const known = db.prepare('SELECT id FROM snaps').pluck().all() as string[];
      if (known.includes(id)) return null;
      if (known.length > 0) forgetSnapshots(db, known);
      db.exec('BEGIN IMMEDIATE');
      try {
        if (db.prepare('SELECT 1 FROM snaps LIMIT 1').get()) { db.exec('ROLLBACK'); return null; }
        const seq = Number(db.prepare('INSERT INTO snaps (id, finished_at, base_seq, complete) VALUES (?, ?, NULL, 0)').run(id, startedAt).lastInsertRowid);
        db.exec('COMMIT');
        return new RunAppend(db, seq, id);
      } catch (err) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw err;
      }
    } catch {
      return null;
    }
  }

  /** Whether the rows were given up (the caller adds the snapshot from its index). */
  get givenUp(): boolean {
    return this.failed;
  }

  /** One record of the index, as it is written. Never throws: a failure gives the rows up. */
  add(e: Entry): void {
    if (this.failed || e.path === '') return;
    this.entries++;
    this.bytes += e.size;
    countInFolder(this.children, e);
    this.pending.push(e);
    if (this.pending.length >= BATCH) this.write(false);
  }

  /** Writes what is pending; true when written. `last`: the totals too, in the same transaction. */
  private write(last: boolean): boolean {
    if (this.failed) return false;
    const db = this.db;
    try {
      db.exec('BEGIN IMMEDIATE');
    } catch (err) {
      // Another process writes the catalog: the records wait for the next batch.
      if ((err as { code?: string }).code === 'SQLITE_BUSY' && !last && this.pending.length < MAX_PENDING) return false;
      this.giveUp();
      return false;
    }
    try {
      if (!db.prepare('SELECT 1 FROM snaps WHERE seq = ? AND id = ? AND complete = 0').get(this.seq, this.id)) throw new Error('forgotten');
      for (const e of this.pending) this.addVersion(this.idOfPath(e.path), this.seq, e);
      this.written += this.pending.length;
      this.pending = [];
      if (last) {
        const held = db.prepare('SELECT count(*) FROM versions WHERE first_seq = ?').pluck().get(this.seq) as number;
        if (held !== this.written) throw new Error('rows missing');
        addFolderCounts(db, this.seq, this.children);
      }
      db.exec('COMMIT');
      return true;
    } catch {
      if (db.inTransaction) db.exec('ROLLBACK');
      this.giveUp();
      return false;
    }
  }

  /**
   * Once the index is complete: writes the rest and the totals, the snapshot still unfinished.
   * False when the rows were given up or forgotten meanwhile.
   */
  finish(finishedAt: string): boolean {
    if (!this.write(true)) return false;
    try {
      const r = this.db.prepare(`UPDATE snaps SET finished_at = ?, entries = ?, bytes = ?, added = ?, changed = 0, removed = 0, added_bytes = ?,
        changed_bytes = 0, removed_bytes = 0 WHERE seq = ? AND complete = 0`).run(finishedAt, this.entries, this.bytes, this.entries, this.bytes, this.seq);
      if (r.changes === 1) return true;
    } catch { /* given up below */ }
    this.giveUp();
    return false;
  }

  /** After the snapshot is listed: counted from now on. False when its rows were forgotten since `finish`. */
  publish(): boolean {
    if (this.failed) return false;
    const r = this.db.prepare('UPDATE snaps SET complete = 1 WHERE seq = ? AND id = ? AND complete = 0').run(this.seq, this.id);
    return r.changes === 1;
  }

  /** The backup did not commit, or the rows were given up: they go (or with the next update, when the lock is taken). */
  abandon(): void {
    this.giveUp();
    try {
      forgetSnapshots(this.db, [this.id]);
    } catch { /* an unfinished append is forgotten by the next update */ }
  }

  private giveUp(): void {
    this.failed = true;
    this.pending = [];
    this.children.clear();
  }
}
