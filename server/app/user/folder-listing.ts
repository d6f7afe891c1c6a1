import type { Context } from '../../services/context.js';
import { withDriver } from '../../services/destinations.js';
import { catalogFile, openCatalog } from '../../engine/catalog/path-catalog.js';
import { catalogSeq, folderCounts, folderPage, isCatalogFolder, type FolderCounts, type ListedEntry } from '../../engine/catalog/catalog-folder.js';
import type { Entry } from '../../engine/format/entry.js';
import { eachIndexEntry } from '../../engine/snapshot-index.js';
import { layout } from '../../engine/snapshot-layout.js';
import type { SnapshotRecord } from '../../store/snapshots.js';
import { parentOf, type BytePath } from '../../util/byte-path.js';
import { displayName } from '../display-name.js';

/** One entry of a folder as the browse page shows it. */
export interface FolderItem {
  entry: ListedEntry;
  /** The last part of the path (bytes). */
  name: BytePath;
  /** Regular files at or below it (a folder's whole tree; 1 for a file or hard link). */
  files: number;
  /**
   * Bytes a restore of it writes: a file's size, the size a hard link shares with its
   * first path, the sum of a folder's files (hard links inside counted once, with their first path).
   */
  bytes: number;
  /** Lower-case display of the name, made when a filter first needs it. */
  lower?: string;
}

export interface FolderListing {
  dir: ListedEntry;
  /** Folders first, then by the bytes of the name. */
  items: FolderItem[];
}

/** No such folder in the snapshot (or it is not a folder). */
export class NoSuchFolder extends Error {}

/**
 * The snapshot's own key: a snapshot never changes once made, so a folder read once can be
 * paged and filtered again from memory; the scope check still runs on every request.
 */
const snapshotKey = (s: SnapshotRecord): string => `${s.destinationId}\0${s.account}\0${s.id}\0${s.finishedAt}`;

/** The folders of a snapshot read so far: all of them (`whole`) or the one asked for. */
export interface SnapshotFolders {
  folders: Map<BytePath, FolderListing>;
  whole: boolean;
  entries: number;
}

/** Beyond this many entries a snapshot's folders are not all kept: only the one asked for. */
const TREE_MAX_ENTRIES = 400_000;

/** Recently read snapshots, bounded in snapshots and in entries held (a few hundred bytes each). */
class FolderCache {
  private readonly map = new Map<string, SnapshotFolders>();
  private held = 0;
  constructor(private readonly maxSnapshots = 8, private readonly maxEntries = TREE_MAX_ENTRIES) {}

  get(key: string): SnapshotFolders | undefined {
    const v = this.map.get(key);
    if (v) { this.map.delete(key); this.map.set(key, v); }
    return v;
  }

  set(key: string, v: SnapshotFolders): void {
    if (v.entries > this.maxEntries) return;
    const old = this.map.get(key);
    if (old) { this.map.delete(key); this.held -= old.entries; }
    this.map.set(key, v);
    this.held += v.entries;
    for (const [k, o] of this.map) {
      if (this.map.size <= this.maxSnapshots && this.held <= this.maxEntries) break;
      this.map.delete(k);
      this.held -= o.entries;
    }
  }
}

const cache = new FolderCache();

const byName = (a: FolderItem, b: FolderItem): number => {
  const ad = a.entry.kind === 'd';
  if (ad !== (b.entry.kind === 'd')) return ad ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
};

/** Bytes of a file already read (a hard link's first path, always listed before it): its folder's items are in name order. */
function sizeOf(folders: Map<BytePath, FolderListing>, path: BytePath): number {
  const parent = parentOf(path);
  const items = folders.get(parent)?.items;
  if (!items) return 0;
  const name = path.slice(parent === '' ? 0 : parent.length + 1);
  let lo = 0;
  let hi = items.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const n = items[mid]!.name;
    if (n === name) return items[mid]!.entry.size;
    if (n < name) lo = mid + 1; else hi = mid - 1;
  }
  return 0;
}

/**
 * Folders first, then by name. The walk lists each folder's entries in name order already,
 * so this is one pass; an index in another order is sorted.
 */
function foldersFirst(items: FolderItem[]): void {
  for (let i = 1; i < items.length; i++) {
    if (items[i - 1]!.name >= items[i]!.name) { items.sort(byName); return; }
  }
  const dirs = items.filter((i) => i.entry.kind === 'd');
  if (dirs.length === 0 || dirs.length === items.length) return;
  const rest = items.filter((i) => i.entry.kind !== 'd');
  items.length = 0;
  for (const i of dirs) items.push(i);
  for (const i of rest) items.push(i);
}

/**
 * Reads every folder of a snapshot from its index in one streaming pass: each folder's
 * direct children, and for each sub-folder the files and bytes of its whole tree (added to
 * every folder above a file as it streams by). A hard link's size is that of the file it
 * shares, always listed before it (looked up in its folder, read already). So the first folder opened costs one read of the index
 * and every other folder of the snapshot is then answered from memory. A snapshot of more
 * than TREE_MAX_ENTRIES keeps only the folder asked for.
 */
async function readFolders(ctx: Context, s: SnapshotRecord, wanted: BytePath): Promise<SnapshotFolders> {
  const record = ctx.store.destinations.byId(s.destinationId);
  if (!record) throw new NoSuchFolder('no destination');
  const reader = new FolderReader(wanted);
  await withDriver(ctx, record, (dest) => eachIndexEntry(dest, layout.snapshotDir(s.account, s.id), (e) => reader.add(e)));
  return reader.result();
}

/** The folders of a snapshot from its index entries, given in index order (see readFolders). */
export class FolderReader {
  private readonly folders = new Map<BytePath, FolderListing>();
  /** Each folder's own row in its parent's listing, where its tree's totals add up. */
  private readonly rowOf = new Map<BytePath, FolderItem>();
  private whole = true;
  private entries = 0;
  private readonly wantedPrefix: string;

  constructor(private readonly wanted: BytePath, private readonly maxEntries = TREE_MAX_ENTRIES) {
    this.wantedPrefix = wanted === '' ? '' : `${wanted}/`;
  }

  private inWanted(p: BytePath): boolean { return p === this.wanted || p.startsWith(this.wantedPrefix); }

  add(e: Entry): void {
    const { folders, rowOf } = this;
    this.entries++;
    if (this.whole && this.entries > this.maxEntries) {
      // Too large to keep whole: from here on only what the folder asked for needs.
      this.whole = false;
      for (const dir of [...folders.keys()]) if (!this.inWanted(dir)) folders.delete(dir);
      for (const dir of [...rowOf.keys()]) if (!this.inWanted(dir)) rowOf.delete(dir);
    }
    if (!this.whole && !this.inWanted(e.path)) return;
    if (e.path === '') { folders.set('', { dir: e, items: [] }); return; }
    const parent = parentOf(e.path);
    const item: FolderItem = { entry: e, name: e.path.slice(parent === '' ? 0 : parent.length + 1), files: 0, bytes: 0 };
    folders.get(parent)?.items.push(item);
    if (e.kind === 'd') { folders.set(e.path, { dir: e, items: [] }); rowOf.set(e.path, item); return; }
    if (e.kind !== 'f' && e.kind !== 'h') return;
    const bytes = e.kind === 'f' ? e.size : sizeOf(folders, e.link);
    item.files = 1;
    item.bytes = bytes;
    // Up the folders that hold it; a hard link's bytes stop where its first path is inside too.
    for (let a = parent; a !== ''; a = parentOf(a)) {
      const row = rowOf.get(a);
      if (!row) break;
      row.files++;
      if (e.kind === 'f' || !e.link.startsWith(`${a}/`)) row.bytes += bytes;
    }
  }

  result(): SnapshotFolders {
    const { folders, wanted } = this;
    for (const f of folders.values()) foldersFirst(f.items);
    if (!this.whole) {
      const only = folders.get(wanted);
      return { folders: new Map(only ? [[wanted, only]] : []), whole: false, entries: only?.items.length ?? 0 };
    }
    return { folders, whole: true, entries: this.entries };
  }
}

/** The folder's listing as far as it is in memory already (its snapshot was read recently), else undefined. */
export function cachedListing(s: SnapshotRecord, dir: BytePath): FolderListing | undefined {
  const key = snapshotKey(s);
  return cache.get(key)?.folders.get(dir) ?? cache.get(`${key}\0${dir}`)?.folders.get(dir);
}

export interface FolderPage { total: number; items: FolderItem[] }

/** Counts of folders paged recently (a count of a large folder is its one costly query). */
const countCache = new Map<string, FolderCounts>();
const COUNTS_KEPT = 64;

/**
 * One page of a folder (`page` from 1) from the account's path catalog, without reading
 * the snapshot's index; null when the catalog cannot answer: it does not hold the snapshot
 * (made before the catalog, the catalog being built) or not that folder, or cannot be read.
 * The caller reads the index then, which also says when a folder does not exist.
 */
export function catalogFolderPage(ctx: Context, s: SnapshotRecord, dir: BytePath, page: number, size: number): FolderPage | null {
  let db;
  try {
    db = openCatalog(catalogFile(ctx.dataDir, s.destinationId, s.account), { readonly: true });
  } catch {
    return null;
  }
  if (!db) return null;
  try {
    // One read transaction: a catalog updated meanwhile is seen before or after, never half.
    return db.transaction((): FolderPage | null => {
      const seq = catalogSeq(db, s);
      if (seq === null || !isCatalogFolder(db, seq, dir)) return null;
      const key = `${snapshotKey(s)}\0${seq}\0${dir}`;
      let counts = countCache.get(key);
      if (!counts) {
        counts = folderCounts(db, seq, dir);
        countCache.set(key, counts);
        for (const k of countCache.keys()) { if (countCache.size <= COUNTS_KEPT) break; countCache.delete(k); }
      }
      const pages = Math.max(1, Math.ceil(counts.total / size));
      const offset = (Math.min(page, pages) - 1) * size;
      return { total: counts.total, items: folderPage(db, seq, dir, counts, offset, size) };
    })();
  } catch {
    return null;
  } finally {
    db.close();
  }
}

/** The folder's listing, from memory when its snapshot was read recently. */
export async function folderListing(ctx: Context, s: SnapshotRecord, dir: BytePath): Promise<FolderListing> {
  const key = snapshotKey(s);
  let listing = cache.get(key)?.folders.get(dir) ?? cache.get(`${key}\0${dir}`)?.folders.get(dir);
  if (!listing) {
    const read = await readFolders(ctx, s, dir);
    cache.set(read.whole ? key : `${key}\0${dir}`, read);
    listing = read.folders.get(dir);
  }
  if (!listing || listing.dir.kind !== 'd') throw new NoSuchFolder('not a folder of this snapshot');
  return listing;
}

/** The items whose shown name holds `filter` (ignoring case); all when the filter is empty. */
export function filterItems(items: FolderItem[], filter: string): FolderItem[] {
  const q = filter.trim().toLowerCase();
  if (q === '') return items;
  return items.filter((i) => (i.lower ??= displayName(i.name).toLowerCase()).includes(q));
}

export interface Chosen {
  path: BytePath;
  entry: Entry;
  files: number;
  bytes: number;
}

/**
 * The chosen paths as the snapshot holds them, with what restoring each writes, found in
 * one pass over the index whatever folders they come from; null for a path the snapshot
 * does not hold. A path inside another chosen one is counted once.
 */
export async function findChosen(ctx: Context, s: SnapshotRecord, paths: BytePath[]): Promise<{ found: Chosen[]; missing: BytePath[] }> {
  const wanted = new Map<BytePath, Chosen | null>(paths.map((p) => [p, null]));
  const record = ctx.store.destinations.byId(s.destinationId);
  if (!record) return { found: [], missing: paths };
  const covering = (p: BytePath): Chosen | null => {
    for (let a = p; a !== ''; a = parentOf(a)) {
      const c = wanted.get(a);
      if (c) return c;
    }
    return null;
  };
  const sizes = new Map<BytePath, number>();
  await withDriver(ctx, record, (dest) => eachIndexEntry(dest, layout.snapshotDir(s.account, s.id), (e) => {
    if (e.kind === 'f') sizes.set(e.path, e.size);
    if (wanted.has(e.path)) {
      const c: Chosen = { path: e.path, entry: e, files: 0, bytes: 0 };
      // Counted in the folder that holds it, when that is chosen too.
      const outer = covering(parentOf(e.path));
      wanted.set(e.path, c);
      if (outer) return;
      if (e.kind === 'f') { c.files = 1; c.bytes = e.size; } else if (e.kind === 'h') { c.files = 1; c.bytes = sizes.get(e.link) ?? 0; }
      return;
    }
    if (e.kind !== 'f' && e.kind !== 'h') return;
    const c = covering(parentOf(e.path));
    if (!c) return;
    c.files++;
    if (e.kind === 'f') c.bytes += e.size; else if (!covering(e.link)) c.bytes += sizes.get(e.link) ?? 0;
  }));
  const found: Chosen[] = [];
  const missing: BytePath[] = [];
  for (const [p, c] of wanted) if (c) found.push(c); else missing.push(p);
  return { found, missing };
}
