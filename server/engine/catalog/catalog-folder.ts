import type Database from 'better-sqlite3';
import type { Entry } from '../format/entry.js';
import type { BytePath } from '../../util/byte-path.js';
import { CATALOG_FORMAT } from './path-catalog.js';

/**
 * One page of a folder of one catalogued snapshot, as the file browser lists it: folders
 * first, then by the bytes of the name, each with the regular files at or below it and the
 * bytes a restore of it writes. SQLite counts and pages in the path index, so a folder of
 * 100,000 entries costs a count and a page, not 100,000 rows brought into JavaScript.
 * What a restore writes is never taken from here: the catalog is a cache of the index.
 */

/** What the browser shows of an entry; the catalog does not hold owners or content references. */
export type ListedEntry = Pick<Entry, 'kind' | 'path' | 'mode' | 'size' | 'mtimeSec' | 'mtimeNsec' | 'link'>;

export interface ListedItem {
  entry: ListedEntry;
  /** The last part of the path (bytes). */
  name: BytePath;
  files: number;
  bytes: number;
}

export interface FolderCounts {
  /** Direct entries of the folder. */
  total: number;
  /** Of them, folders (listed first). */
  folders: number;
}

const blob = (p: BytePath): Buffer => Buffer.from(p, 'latin1');

/** The seq of a snapshot the catalog holds completely (same id and time), or null: the caller reads the index then. */
export function catalogSeq(db: Database.Database, snap: { id: string; finishedAt: string }): number | null {
  const format = (db.prepare("SELECT value FROM meta WHERE key = 'format'").pluck().get() as string | undefined);
  if (format !== CATALOG_FORMAT) return null;
  const seq = db.prepare('SELECT seq FROM snaps WHERE id = ? AND finished_at = ? AND complete = 1').pluck().get(snap.id, snap.finishedAt) as number | undefined;
  return seq ?? null;
}

/** Versions a snapshot holds below `dir` (BLOBs compare bytewise: from "d/" up to "d0", '0' following '/'). */
function below(dir: BytePath): { sql: string; args: Buffer[] } {
  if (dir === '') return { sql: '1', args: [] };
  return { sql: 'p.path > ? AND p.path < ?', args: [blob(`${dir}/`), blob(`${dir}0`)] };
}

/** Direct entries only: no '/' after the folder's prefix (byte positions: substr and instr work on BLOBs bytewise). */
const direct = (dir: BytePath): string => `instr(substr(p.path, ${dir === '' ? 1 : Buffer.byteLength(dir, 'latin1') + 2}), X'2F') = 0`;

const HELD = 'v.first_seq <= @seq AND v.last_seq >= @seq';

/** Whether the snapshot holds `dir` as a folder ('' always). */
export function isCatalogFolder(db: Database.Database, seq: number, dir: BytePath): boolean {
  if (dir === '') return true;
  const kind = db.prepare(`SELECT v.kind FROM paths p JOIN versions v ON v.path_id = p.id WHERE p.path = @path AND ${HELD}`).pluck()
    .get({ path: blob(dir), seq }) as string | undefined;
  return kind === 'd';
}

export function folderCounts(db: Database.Database, seq: number, dir: BytePath): FolderCounts {
  const kept = db.prepare('SELECT total, folders FROM folder_counts WHERE seq = ? AND path = ?').get(seq, blob(dir)) as FolderCounts | undefined;
  if (kept) return kept;
  const w = below(dir);
  const row = db.prepare(`SELECT count(*) AS total, total(v.kind = 'd') AS folders FROM paths p JOIN versions v ON v.path_id = p.id
    WHERE ${w.sql} AND ${direct(dir)} AND ${HELD}`).get(...w.args, { seq }) as { total: number; folders: number };
  return { total: row.total, folders: row.folders };
}

type Row = [Buffer, number, string, number, number, number, number, Buffer | null];

/** Entries `offset`..`offset + limit` of the folder in the browser's order (`counts` from folderCounts). */
export function folderPage(db: Database.Database, seq: number, dir: BytePath, counts: FolderCounts, offset: number, limit: number): ListedItem[] {
  const w = below(dir);
  const select = (kind: string) => db.prepare(`SELECT p.path, v.id, v.kind, v.mode, v.size, v.mtime_sec, v.mtime_nsec, v.link
    FROM paths p JOIN versions v ON v.path_id = p.id WHERE ${w.sql} AND ${direct(dir)} AND ${HELD} AND ${kind}
    ORDER BY p.path LIMIT @limit OFFSET @offset`).raw(true);
  const rows: Row[] = [];
  if (offset < counts.folders) {
    rows.push(...select("v.kind = 'd'").all(...w.args, { seq, limit, offset }) as Row[]);
  }
  if (rows.length < limit) {
    const from = Math.max(0, offset - counts.folders);
    rows.push(...select("v.kind <> 'd'").all(...w.args, { seq, limit: limit - rows.length, offset: from }) as Row[]);
  }
  const folderTime = db.prepare('SELECT mode, mtime_sec, mtime_nsec FROM folder_times WHERE version_id = ? AND seq <= ? ORDER BY seq DESC LIMIT 1').raw(true);
  const nameAt = dir === '' ? 0 : dir.length + 1;
  return rows.map(([rawPath, versionId, kind, mode, size, mtimeSec, mtimeNsec, link]) => {
    const path = rawPath.toString('latin1');
    const entry: ListedEntry = { kind: kind as Entry['kind'], path, mode, size, mtimeSec, mtimeNsec, link: link ? link.toString('latin1') : '' };
    let files = 0;
    let bytes = 0;
    if (kind === 'd') {
      const t = folderTime.get(versionId, seq) as [number, number, number] | undefined;
      if (t) [entry.mode, entry.mtimeSec, entry.mtimeNsec] = t;
      ({ files, bytes } = treeTotals(db, seq, path));
    } else if (kind === 'f') {
      files = 1; bytes = size;
    } else if (kind === 'h') {
      files = 1; bytes = fileSize(db, seq, entry.link);
    }
    return { entry, name: path.slice(nameAt), files, bytes };
  });
}

/** The size of the regular file at `path` in the snapshot (a hard link's first path), 0 if none. */
function fileSize(db: Database.Database, seq: number, path: BytePath): number {
  const size = db.prepare(`SELECT v.size FROM paths p JOIN versions v ON v.path_id = p.id WHERE p.path = @path AND ${HELD} AND v.kind = 'f'`).pluck()
    .get({ path: blob(path), seq }) as number | undefined;
  return size ?? 0;
}

/**
 * Regular files at or below a folder and the bytes restoring it writes: a hard link counts
 * as a file, its bytes only when the path it shares lies outside the folder (else they are
 * counted there already).
 */
function treeTotals(db: Database.Database, seq: number, dir: BytePath): { files: number; bytes: number } {
  const w = below(dir);
  const sums = db.prepare(`SELECT total(v.kind = 'f') + total(v.kind = 'h') AS files, total(CASE WHEN v.kind = 'f' THEN v.size ELSE 0 END) AS bytes,
    total(v.kind = 'h') AS links FROM paths p JOIN versions v ON v.path_id = p.id WHERE ${w.sql} AND ${HELD}`).get(...w.args, { seq }) as { files: number; bytes: number; links: number };
  let bytes = sums.bytes;
  if (sums.links > 0) {
    const links = db.prepare(`SELECT v.link FROM paths p JOIN versions v ON v.path_id = p.id WHERE ${w.sql} AND ${HELD} AND v.kind = 'h'`).pluck();
    for (const raw of links.iterate(...w.args, { seq }) as Iterable<Buffer | null>) {
      const link = raw ? raw.toString('latin1') : '';
      if (!link.startsWith(`${dir}/`)) bytes += fileSize(db, seq, link);
    }
  }
  return { files: sums.files, bytes };
}
