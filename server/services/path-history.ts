import type Database from 'better-sqlite3';
import type { Context } from './context.js';
import { UserError } from './context.js';
import { isDay } from '../util/input-checks.js';
import { ROOT, type Actor } from './actor.js';
import { DestinationError } from '../destinations/types.js';
import { listSnapshots } from './snapshots.js';
import { catalogProgress, syncAccountCatalog, type CatalogProgress } from './path-catalogs.js';
import type { SnapshotRecord } from '../store/snapshots.js';
import { catalogFile, catalogSnapshots, openCatalog, unreadableSnapshots, type VersionRow } from '../engine/catalog/path-catalog.js';
import { changeCounts, changesBetween, pathVersions, searchCatalog, timeline, type LightHit, type TimelinePoint, versionsById } from '../engine/catalog/catalog-query.js';
import { parseNameQuery } from '../engine/catalog/name-match.js';
import { isUtf8, normaliseRelative, toDisplay, type BytePath } from '../util/byte-path.js';

/**
 * Search, versions of a path and what changed, over the snapshots `actor` may see of one
 * account (listSnapshots decides, as everywhere): another account's catalog is never
 * opened, and a hidden or former account's snapshot never contributes a row or a count.
 */

/** One destination's visible snapshots of the account, oldest first, with their seqs in its catalog. */
interface Series { destination: string; destinationId: number; db: Database.Database; snapshots: SnapshotRecord[]; seqs: number[] }

export interface Readiness {
  /** Set while a catalog is still being built: the answer covers only what is built. */
  building: CatalogProgress | null;
  /** Snapshots whose index was refused as damaged: not searched. */
  unreadable: string[];
  /** Destinations that could not be read to bring the catalog up to date: their newest snapshots may be missing from the answer. */
  unreachable: string[];
}

interface Opened extends Readiness { series: Series[]; close(): void }

export interface HistoryOptions {
  /** How long to wait for a catalog to be built before answering with what is there (default: until built). */
  waitMs?: number;
}

const TYPE_NAMES: Record<VersionRow['kind'], string> = { f: 'file', d: 'directory', l: 'symlink', h: 'hardlink', p: 'fifo' };

function accountFor(actor: Actor, account: string | undefined): string {
  if (actor.role === 'user') {
    if (account !== undefined && account !== actor.name) throw new UserError(`no snapshot of account ${account}`, 'not-found');
    return actor.name;
  }
  if (account === undefined || account === '') throw new UserError('account: name the account whose snapshots to look in', 'invalid-input');
  return account;
}

const timeout = (ms: number): Promise<'timeout'> => new Promise((r) => { setTimeout(() => r('timeout'), ms).unref(); });

async function openSeries(ctx: Context, actor: Actor, account: string, opts: HistoryOptions, keep: (s: SnapshotRecord) => boolean = () => true): Promise<Opened> {
  const visible = (await listSnapshots(ctx, { account }, actor)).filter(keep);
  const byDestination = new Map<number, SnapshotRecord[]>();
  for (const s of visible) {
    const list = byDestination.get(s.destinationId);
    if (list) list.push(s); else byDestination.set(s.destinationId, [s]);
  }
  const series: Series[] = [];
  let building = null as CatalogProgress | null;
  const unreadable: string[] = [];
  const unreachable: string[] = [];
  // Every destination's catalog is brought up to date at once, within one wait.
  const deadline = opts.waitMs === undefined ? null : timeout(opts.waitMs);
  const syncs = new Map([...byDestination.keys()].map((destinationId) => {
    const d = ctx.store.destinations.byId(destinationId)!;
    return [destinationId, syncAccountCatalog(ctx, d, account).then(() => 'done' as const, (err: unknown) => {
      // What is catalogued still answers; the destination is named as not read.
      if (!(err instanceof DestinationError)) throw err;
      unreachable.push(d.name);
      return 'failed' as const;
    })];
  }));
  try {
    for (const [destinationId, list] of byDestination) {
      const d = ctx.store.destinations.byId(destinationId)!;
      const sync = syncs.get(destinationId)!;
      const outcome = deadline === null ? await sync : await Promise.race([sync, deadline]);
      if (outcome === 'timeout') {
        sync.catch(() => {}); // it goes on; its failure is met by the next question
        const p = catalogProgress(ctx, destinationId, account) ?? { done: 0, total: list.length };
        building = { done: (building?.done ?? 0) + p.done, total: (building?.total ?? 0) + p.total };
      }
      const db = openCatalog(catalogFile(ctx.dataDir, destinationId, account), { readonly: true });
      if (!db) continue;
      const seqOf = new Map(catalogSnapshots(db).map((c) => [c.id, c.seq]));
      const bad = new Set(unreadableSnapshots(db));
      const held = [...list].reverse().filter((s) => seqOf.has(s.id));
      unreadable.push(...list.filter((s) => bad.has(s.id)).map((s) => s.id));
      // Made after the update began (or its update cut short): not in the answer, and said so.
      const notYet = list.length - held.length - list.filter((s) => bad.has(s.id)).length;
      if (outcome === 'done' && notYet > 0) building = { done: (building?.done ?? 0) + held.length, total: (building?.total ?? 0) + list.length };
      series.push({ destination: d.name, destinationId, db, snapshots: held, seqs: held.map((s) => seqOf.get(s.id)!) });
    }
  } catch (err) {
    for (const s of series) s.db.close();
    for (const p of syncs.values()) p.catch(() => {});
    throw err;
  }
  return { series, building, unreadable, unreachable, close: () => { for (const s of series) s.db.close(); } };
}

export const snapshotRef = (s: SnapshotRecord, destination: string): SnapshotRef => ({ id: s.id, destination, destinationId: s.destinationId, account: s.account, finishedAt: s.finishedAt });

export interface SnapshotRef { id: string; destination: string; destinationId: number; account: string; finishedAt: string }

/** A path as JSON carries it: exact text when UTF-8, else `pathBase64` holds the bytes. */
export const pathFields = (p: BytePath): { path: string; pathBase64?: string; bytes: BytePath } =>
  ({ path: toDisplay(p), ...(isUtf8(p) ? {} : { pathBase64: Buffer.from(p, 'latin1').toString('base64') }), bytes: p });

export interface VersionView {
  type: string; size: number; mtime: string; target: string | null;
  /** The snapshots that hold this version, newest first. */
  snapshots: SnapshotRef[];
}

const mtimeOf = (v: VersionRow): string => new Date(v.mtimeSec * 1000 + Math.floor(v.mtimeNsec / 1e6)).toISOString();

function versionView(v: VersionRow, covered: [number, number], s: Series): VersionView {
  const snapshots: SnapshotRef[] = [];
  for (let i = covered[1]; i >= covered[0]; i--) snapshots.push(snapshotRef(s.snapshots[i]!, s.destination));
  return { type: TYPE_NAMES[v.kind], size: v.size, mtime: mtimeOf(v), target: v.kind === 'l' || v.kind === 'h' ? toDisplay(v.link) : null, snapshots };
}

const newestOf = (v: VersionView): string => v.snapshots[0]!.finishedAt;

export interface SearchInput {
  account?: string;
  query: string;
  folder?: BytePath;
  /** Snapshots finished on or after this day, on or before that one (YYYY-MM-DD, UTC). */
  from?: string;
  to?: string;
  /** Only versions modified on or after this day (YYYY-MM-DD, UTC). */
  modifiedSince?: string;
  limit?: number;
  offset?: number;
}

export interface SearchResult extends Readiness {
  account: string;
  total: number;
  results: { path: string; pathBase64?: string; bytes: BytePath; versions: VersionView[] }[];
}

/** A folder or path as given, normalised (no leading or trailing slash); `..` is refused. */
function folderOf(p: BytePath | undefined): BytePath {
  try { return normaliseRelative(p ?? ''); } catch (err) { throw new UserError(`path: ${(err as Error).message}`, 'invalid-input'); }
}

function dayStart(name: string, v: string | undefined): string | undefined {
  if (v === undefined || v === '') return undefined;
  if (!isDay(v)) throw new UserError(`${name}: a day as YYYY-MM-DD is expected`, 'invalid-input');
  return new Date(`${v}T00:00:00Z`).toISOString();
}
const nextDay = (iso: string): string => new Date(Date.parse(iso) + 86_400_000).toISOString();

export async function searchPaths(ctx: Context, input: SearchInput, actor: Actor = ROOT, opts: HistoryOptions = {}): Promise<SearchResult> {
  const account = accountFor(actor, input.account);
  let q;
  try { q = parseNameQuery(input.query); } catch (err) { throw new UserError(`query: ${(err as Error).message}`, 'invalid-input'); }
  const from = dayStart('from', input.from);
  const to = dayStart('to', input.to);
  const since = dayStart('modifiedSince', input.modifiedSince);
  const limit = Math.min(Math.max(input.limit ?? 100, 1), 1000);
  const offset = Math.max(input.offset ?? 0, 0);
  const opened = await openSeries(ctx, actor, account, opts,
    (s) => (from === undefined || s.finishedAt >= from) && (to === undefined || s.finishedAt < nextDay(to)));
  try {
    // Each catalog answers in path order: merged as they come, only the page shown is kept
    // (a query matching every file of a large account stays small and quick).
    const window: { path: BytePath; hits: { hit: LightHit; series: Series }[] }[] = [];
    let total = 0;
    for (const group of mergeByPath(opened.series.map((s) => ({ series: s, hits: searchCatalog(s.db, s.seqs, q, { folder: folderOf(input.folder), ...(since ? { modifiedSince: Date.parse(since) / 1000 } : {}) }) })))) {
      if (total >= offset && total < offset + limit) window.push(group);
      total++;
    }
    const rows = new Map<Series, Map<number, VersionRow>>(opened.series.map((s) => [s, versionsById(s.db, window.flatMap((g) => g.hits.filter((x) => x.series === s).map((x) => x.hit.versionId)))]));
    const results = window.map((g) => ({
      ...pathFields(g.path),
      versions: g.hits.map((x) => versionView(rows.get(x.series)!.get(x.hit.versionId)!, x.hit.covered, x.series))
        .sort((a, b) => (newestOf(a) < newestOf(b) ? 1 : newestOf(a) > newestOf(b) ? -1 : 0)),
    }));
    return { account, total, results, building: opened.building, unreadable: opened.unreadable, unreachable: opened.unreachable };
  } finally {
    opened.close();
  }
}

/** Merges hit streams that each come in path order (byte order) into one, grouped by path. */
function* mergeByPath(sources: { series: Series; hits: Generator<LightHit> }[]): Generator<{ path: BytePath; hits: { hit: LightHit; series: Series }[] }> {
  const heads = sources.map((s) => ({ ...s, next: s.hits.next() }));
  for (;;) {
    let path: BytePath | null = null;
    for (const h of heads) if (!h.next.done && (path === null || h.next.value.path < path)) path = h.next.value.path;
    if (path === null) return;
    const hits: { hit: LightHit; series: Series }[] = [];
    for (const h of heads) {
      while (!h.next.done && h.next.value.path === path) { hits.push({ hit: h.next.value, series: h.series }); h.next = h.hits.next(); }
    }
    yield { path, hits };
  }
}

export interface PathVersion {
  snapshot: SnapshotRef; type: string; size: number; mtime: string; target: string | null;
  /** Against the visible snapshot before it on the same destination: `new` (absent there), `changed` or `same`. */
  change: 'new' | 'changed' | 'same';
  /** For a folder: what it holds below it, and what changed there. */
  contents?: TimelinePoint;
}

export interface VersionsResult extends Readiness { account: string; path: string; pathBase64?: string; versions: PathVersion[] }

/** Every visible snapshot that holds `path` (a file, a folder, or '' for the home), newest first. */
export async function pathHistory(ctx: Context, input: { account?: string; path: BytePath }, actor: Actor = ROOT, opts: HistoryOptions = {}): Promise<VersionsResult> {
  const account = accountFor(actor, input.account);
  input = { ...input, path: folderOf(input.path) };
  const opened = await openSeries(ctx, actor, account, opts);
  try {
    const versions: PathVersion[] = [];
    for (const s of opened.series) {
      const hits = input.path === '' ? [] : pathVersions(s.db, s.seqs, input.path);
      const isFolder = input.path === '' || hits.some((h) => h.version.kind === 'd');
      const contents = isFolder ? timeline(s.db, s.seqs, input.path) : null;
      const at: (VersionRow | null)[] = s.seqs.map(() => null);
      for (const h of hits) for (let i = h.covered[0]; i <= h.covered[1]; i++) at[i] = h.version;
      for (let i = 0; i < s.seqs.length; i++) {
        const v = at[i];
        if (input.path !== '' && !v) continue;
        const before = i > 0 ? at[i - 1] : null;
        const point = contents?.[i];
        const folderChanged = point ? point.added + point.changed + point.removed > 0 : false;
        const change: PathVersion['change'] = input.path !== '' && !before ? 'new'
          : (v && before && v.id !== before.id) || folderChanged ? 'changed' : 'same';
        versions.push({
          snapshot: snapshotRef(s.snapshots[i]!, s.destination), type: v ? TYPE_NAMES[v.kind] : 'directory', size: v?.size ?? 0,
          mtime: v ? mtimeOf(v) : s.snapshots[i]!.finishedAt, target: v && (v.kind === 'l' || v.kind === 'h') ? toDisplay(v.link) : null,
          change: i === 0 && input.path === '' ? 'new' : change, ...(point ? { contents: point } : {}),
        });
      }
    }
    versions.sort((a, b) => (a.snapshot.finishedAt < b.snapshot.finishedAt ? 1 : a.snapshot.finishedAt > b.snapshot.finishedAt ? -1 : 0));
    const { bytes: _bytes, ...shown } = pathFields(input.path);
    return { account, ...shown, versions, building: opened.building, unreadable: opened.unreadable, unreachable: opened.unreachable };
  } finally {
    opened.close();
  }
}

export interface ChangeView { change: 'added' | 'changed' | 'removed'; path: string; pathBase64?: string; bytes: BytePath; type: string; size: number; sizeBefore: number | null; mtime: string }

export interface ChangesResult extends Readiness {
  account: string; snapshot: SnapshotRef; against: SnapshotRef | null;
  counts: { added: number; changed: number; removed: number; addedBytes: number; changedBytes: number; removedBytes: number };
  changes: ChangeView[];
  truncated: boolean;
}

/**
 * What changed in snapshot `id` since `against` (by default the visible snapshot before it
 * on the same destination), optionally below a folder. Both must be on one destination.
 */
export async function snapshotChanges(ctx: Context, input: { account?: string; id: string; destinationId?: number; destination?: string; against?: string; folder?: BytePath; limit?: number },
  actor: Actor = ROOT, opts: HistoryOptions = {}): Promise<ChangesResult> {
  const account = accountFor(actor, input.account);
  const opened = await openSeries(ctx, actor, account, opts);
  try {
    const candidates = opened.series.filter((s) => s.snapshots.some((x) => x.id === input.id) 
      && (input.destinationId === undefined || s.destinationId === input.destinationId) && (input.destination === undefined || s.destination === input.destination));
    if (candidates.length === 0) {
      if (opened.building) throw new UserError(`snapshot ${input.id} is not in the search index yet: it is being built, try again in a moment`, 'busy');
      throw new UserError(`no snapshot ${input.id}`);
    }
    if (candidates.length > 1) throw new UserError(`snapshot ${input.id} exists on several destinations; add --destination`);
    const s = candidates[0]!;
    const i = s.snapshots.findIndex((x) => x.id === input.id);
    let j = i - 1;
    if (input.against !== undefined) {
      j = s.snapshots.findIndex((x) => x.id === input.against);
      if (j < 0) throw new UserError(`no snapshot ${input.against} on destination "${s.destination}" to compare with`);
    }
    const [older, newer] = j <= i ? [j, i] : [i, j];
    const counts = { added: 0, changed: 0, removed: 0, addedBytes: 0, changedBytes: 0, removedBytes: 0 };
    const changes: ChangeView[] = [];
    const limit = Math.min(Math.max(input.limit ?? 1000, 1), 10000);
    let truncated = false;
    if (older >= 0) {
      for (const c of changesBetween(s.db, s.seqs[older]!, s.seqs[newer]!, folderOf(input.folder))) {
        const v = (c.after ?? c.before)!;
        counts[c.kind]++;
        counts[`${c.kind}Bytes`] += v.size;
        if (changes.length >= limit) { truncated = true; continue; }
        changes.push({ change: c.kind, ...pathFields(v.path), type: TYPE_NAMES[v.kind], size: v.size, sizeBefore: c.kind === 'changed' ? c.before!.size : null, mtime: mtimeOf(v) });
      }
    }
    return {
      account, snapshot: snapshotRef(s.snapshots[newer]!, s.destination), against: older >= 0 ? snapshotRef(s.snapshots[older]!, s.destination) : null,
      counts, changes, truncated, building: opened.building, unreadable: opened.unreadable, unreachable: opened.unreachable,
    };
  } finally {
    opened.close();
  }
}

/** Change counts of each visible snapshot of the account (by destination id and snapshot id); absent while not yet known. */
export async function changeCountsOf(ctx: Context, account: string, actor: Actor = ROOT, opts: HistoryOptions = {}): Promise<Map<string, TimelinePoint | null>> {
  const opened = await openSeries(ctx, actor, accountFor(actor, account), opts);
  try {
    const out = new Map<string, TimelinePoint | null>();
    for (const s of opened.series) {
      changeCounts(s.db, s.seqs).forEach((p, i) => out.set(`${s.destinationId}/${s.snapshots[i]!.id}`, p));
    }
    return out;
  } finally {
    opened.close();
  }
}
