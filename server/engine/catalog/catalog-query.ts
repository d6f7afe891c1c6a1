import type Database from 'better-sqlite3';
import type { BytePath } from '../../util/byte-path.js';
import { catalogSnapshots, versionOf, type VersionRow } from './path-catalog.js';
import { matches, type NameQuery } from './name-match.js';

/**
 * Questions to one catalog, always about a given set of its snapshots (`visible`: the
 * seqs the asker may see, oldest first). A version no visible snapshot holds is never
 * returned nor counted: hidden snapshots, and those of a former account of the same name,
 * contribute nothing.
 */

/** The index of the first element of sorted `a` that is >= x. */
function lowerBound(a: readonly number[], x: number): number {
  let lo = 0, hi = a.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (a[mid]! < x) lo = mid + 1; else hi = mid; }
  return lo;
}

/** The visible snapshots (as indexes into `visible`) that hold a version: [first, last], or null. */
export function coveredBy(visible: readonly number[], firstSeq: number, lastSeq: number): [number, number] | null {
  const i = lowerBound(visible, firstSeq);
  const j = lowerBound(visible, lastSeq + 1) - 1;
  return i <= j ? [i, j] : null;
}

/** The SQL condition (and its arguments) for paths at or below `folder` ('' = everywhere). */
function within(folder: BytePath, column = 'p.path'): { sql: string; args: Buffer[] } {
  if (folder === '') return { sql: '1', args: [] };
  // BLOBs compare bytewise: below "a/b" lies everything from "a/b/" up to "a/b0" ('0' follows '/').
  return { sql: `(${column} = ? OR (${column} > ? AND ${column} < ?))`, args: [Buffer.from(folder, 'latin1'), Buffer.from(`${folder}/`, 'latin1'), Buffer.from(`${folder}0`, 'latin1')] };
}

export interface SearchOptions {
  folder?: BytePath;
  /** Only versions whose mtime is at or after this (seconds since the epoch). */
  modifiedSince?: number;
}

export interface SearchHit { version: VersionRow; covered: [number, number] }

/** A search match before it is shown: its path, version id and the visible snapshots holding it. */
export interface LightHit { path: string; versionId: number; covered: [number, number] }

/**
 * Every version of a matching path that a visible snapshot holds, in path order (byte
 * order). Only the path and the version's id and interval are read here: a query matching
 * every file costs one pass over small rows; `versionsById` fetches the rows shown.
 */
export function* searchCatalog(db: Database.Database, visible: readonly number[], q: NameQuery, opts: SearchOptions = {}): Generator<LightHit> {
  if (visible.length === 0) return;
  const where: string[] = ['v.last_seq >= ?', 'v.first_seq <= ?'];
  const args: unknown[] = [visible[0], visible[visible.length - 1]];
  if (q.literal !== '') {
    where.push(q.scope === 'name' ? 'instr(substr(p.folded, p.name_at + 1), ?) > 0' : 'instr(p.folded, ?) > 0');
    args.push(Buffer.from(q.literal, 'latin1'));
  }
  const w = within(opts.folder ?? '');
  where.push(w.sql); args.push(...w.args);
  if (opts.modifiedSince !== undefined) { where.push('v.mtime_sec >= ?'); args.push(opts.modifiedSince); }
  const stmt = db.prepare(`SELECT p.path, v.id, v.first_seq, v.last_seq${q.glob ? ', p.folded' : ''} FROM paths p JOIN versions v ON v.path_id = p.id
    WHERE ${where.join(' AND ')} ORDER BY p.path, v.first_seq`).raw(true);
  for (const row of stmt.iterate(...args) as Iterable<[Buffer, number, number, number, Buffer?]>) {
    if (q.glob && !matches(q, row[4]!.toString('latin1'))) continue;
    const covered = coveredBy(visible, row[2], row[3]);
    if (covered) yield { path: row[0].toString('latin1'), versionId: row[1], covered };
  }
}

/** The version rows of these ids. */
export function versionsById(db: Database.Database, ids: readonly number[]): Map<number, VersionRow> {
  const out = new Map<number, VersionRow>();
  const stmt = db.prepare('SELECT v.*, p.path FROM versions v JOIN paths p ON p.id = v.path_id WHERE v.id = ?');
  for (const id of ids) {
    const r = stmt.get(id) as Parameters<typeof versionOf>[0] | undefined;
    if (r) out.set(id, versionOf(r));
  }
  return out;
}

/** The versions of one path, oldest first, each with the visible snapshots that hold it. */
export function pathVersions(db: Database.Database, visible: readonly number[], path: BytePath): SearchHit[] {
  const rows = db.prepare('SELECT v.*, p.path FROM versions v JOIN paths p ON p.id = v.path_id WHERE p.path = ? ORDER BY v.first_seq')
    .all(Buffer.from(path, 'latin1')) as Parameters<typeof versionOf>[0][];
  const out: SearchHit[] = [];
  for (const r of rows) {
    const covered = coveredBy(visible, r.first_seq, r.last_seq);
    if (covered) out.push({ version: versionOf(r), covered });
  }
  return out;
}

/** What each visible snapshot holds below a folder, and what changed there since the visible snapshot before it. */
export interface TimelinePoint {
  entries: number; bytes: number;
  added: number; changed: number; removed: number; addedBytes: number; changedBytes: number; removedBytes: number;
}

const emptyPoint = (): TimelinePoint => ({ entries: 0, bytes: 0, added: 0, changed: 0, removed: 0, addedBytes: 0, changedBytes: 0, removedBytes: 0 });

/**
 * One pass over the versions below `folder` (the folder itself not counted): per visible
 * snapshot, entries and bytes held, and the entries added, changed and removed since the
 * visible snapshot before it (none for the first).
 */
export function timeline(db: Database.Database, visible: readonly number[], folder: BytePath = ''): TimelinePoint[] {
  const k = visible.length;
  const points = Array.from({ length: k }, emptyPoint);
  if (k === 0) return points;
  const dEntries = new Float64Array(k + 1);
  const dBytes = new Float64Array(k + 1);
  const w = folder === '' ? { sql: '1', args: [] as Buffer[] } : { sql: '(p.path > ? AND p.path < ?)', args: [Buffer.from(`${folder}/`, 'latin1'), Buffer.from(`${folder}0`, 'latin1')] };
  const stmt = db.prepare(`SELECT v.path_id, v.first_seq, v.last_seq, v.size FROM versions v ${folder === '' ? '' : 'JOIN paths p ON p.id = v.path_id'}
    WHERE ${w.sql} AND v.last_seq >= ? AND v.first_seq <= ? ORDER BY v.path_id, v.first_seq`).raw(true);
  let pathId = -1;
  let prev: { j: number; size: number } | null = null;
  const closePrev = (nextStart: number | null): void => {
    // The path's last range ends before the last snapshot, and no range follows at once: removed there.
    if (prev && prev.j < k - 1 && nextStart !== prev.j + 1) { points[prev.j + 1]!.removed++; points[prev.j + 1]!.removedBytes += prev.size; }
  };
  for (const [pid, first, last, size] of stmt.iterate(...w.args, visible[0], visible[k - 1]) as Iterable<[number, number, number, number]>) {
    const c = coveredBy(visible, first, last);
    if (!c) continue;
    const [i, j] = c;
    if (pid !== pathId) { closePrev(null); pathId = pid; prev = null; }
    dEntries[i]! += 1; dEntries[j + 1]! -= 1;
    dBytes[i]! += size; dBytes[j + 1]! -= size;
    if (i > 0) {
      if (prev && prev.j === i - 1) { points[i]!.changed++; points[i]!.changedBytes += size; } else { points[i]!.added++; points[i]!.addedBytes += size; }
    }
    if (prev) closePrev(i);
    prev = { j, size };
  }
  closePrev(null);
  let e = 0, b = 0;
  for (let x = 0; x < k; x++) { e += dEntries[x]!; b += dBytes[x]!; points[x]!.entries = e; points[x]!.bytes = b; }
  return points;
}

/**
 * Change counts of every visible snapshot against the visible one before it. Counted when
 * each snapshot was added to the catalog, against the snapshot catalogued before it; when
 * that one is not the visible one before it (hidden, deleted, a former account's), the
 * counts are worked out again from the versions. Null for the first visible snapshot.
 */
export function changeCounts(db: Database.Database, visible: readonly number[]): (TimelinePoint | null)[] {
  const bySeq = new Map(catalogSnapshots(db).map((s) => [s.seq, s]));
  const stored = visible.map((seq, x) => {
    const s = bySeq.get(seq);
    if (!s || x === 0 || s.baseSeq !== visible[x - 1]) return undefined;
    return { entries: s.entries, bytes: s.bytes, added: s.added, changed: s.changed, removed: s.removed, addedBytes: s.addedBytes, changedBytes: s.changedBytes, removedBytes: s.removedBytes };
  });
  if (stored.every((p, x) => x === 0 || p !== undefined)) return stored.map((p) => p ?? null);
  return timeline(db, visible).map((p, x) => (x === 0 ? null : p));
}

export interface Change { kind: 'added' | 'changed' | 'removed'; before: VersionRow | null; after: VersionRow | null }

/**
 * What differs between two snapshots of one catalog (`older` before `newer`), in path
 * order, optionally below a folder: only rows that one of the two holds and the other not.
 */
export function* changesBetween(db: Database.Database, older: number, newer: number, folder: BytePath = ''): Generator<Change> {
  const w = within(folder);
  const stmt = db.prepare(`SELECT v.*, p.path FROM versions v JOIN paths p ON p.id = v.path_id
    WHERE ((v.first_seq <= ? AND v.last_seq >= ?) + (v.first_seq <= ? AND v.last_seq >= ?)) = 1 AND ${w.sql} ORDER BY p.path, v.first_seq`);
  let pending: VersionRow | null = null;
  const flush = function* (): Generator<Change> {
    if (!pending) return;
    const inOlder = pending.firstSeq <= older && pending.lastSeq >= older;
    yield inOlder ? { kind: 'removed', before: pending, after: null } : { kind: 'added', before: null, after: pending };
    pending = null;
  };
  for (const raw of stmt.iterate(older, older, newer, newer, ...w.args) as Iterable<Parameters<typeof versionOf>[0]>) {
    const v = versionOf(raw);
    if (pending && pending.pathId === v.pathId) {
      const [before, after] = pending.firstSeq <= older && pending.lastSeq >= older ? [pending, v] : [v, pending];
      pending = null;
      yield { kind: 'changed', before, after };
      continue;
    }
    yield* flush();
    pending = v;
  }
  yield* flush();
}
