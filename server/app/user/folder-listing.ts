import type { Context } from '../../services/context.js';
import { withDriver } from '../../services/destinations.js';
import type { Entry } from '../../engine/format/entry.js';
import { eachIndexEntry } from '../../engine/snapshot-index.js';
import { layout } from '../../engine/snapshot-layout.js';
import type { SnapshotRecord } from '../../store/snapshots.js';
import { parentOf, type BytePath } from '../../util/byte-path.js';
import { displayName } from '../display-name.js';

/** One entry of a folder as the browse page shows it. */
export interface FolderItem {
  entry: Entry;
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
  dir: Entry;
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

/** Recently read folders, bounded in folders and in entries held (about 300 bytes each). */
class ListingCache {
  private readonly map = new Map<string, FolderListing>();
  private held = 0;
  constructor(private readonly maxFolders = 24, private readonly maxItems = 600_000) {}

  get(key: string): FolderListing | undefined {
    const v = this.map.get(key);
    if (v) { this.map.delete(key); this.map.set(key, v); }
    return v;
  }

  set(key: string, v: FolderListing): void {
    if (v.items.length > this.maxItems) return;
    this.map.set(key, v);
    this.held += v.items.length;
    for (const [k, old] of this.map) {
      if (this.map.size <= this.maxFolders && this.held <= this.maxItems) break;
      this.map.delete(k);
      this.held -= old.items.length;
    }
  }
}

const cache = new ListingCache();

const byName = (a: FolderItem, b: FolderItem): number => {
  const ad = a.entry.kind === 'd';
  if (ad !== (b.entry.kind === 'd')) return ad ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
};

/**
 * Reads a folder's direct children from the snapshot's index in one streaming pass, with
 * the totals of each sub-folder's tree; a second pass only when a hard link among the
 * children points to a file elsewhere (to give the size they share).
 */
async function readFolder(ctx: Context, s: SnapshotRecord, dir: BytePath): Promise<FolderListing> {
  const snapshotDir = layout.snapshotDir(s.account, s.id);
  const record = ctx.store.destinations.byId(s.destinationId);
  if (!record) throw new NoSuchFolder('no destination');
  return withDriver(ctx, record, async (dest) => {
    let parent: Entry | null = null;
    const items: FolderItem[] = [];
    const byChild = new Map<BytePath, FolderItem>();
    const prefix = dir === '' ? '' : `${dir}/`;
    const sizes = new Map<BytePath, number>();
    await eachIndexEntry(dest, snapshotDir, (e) => {
      if (e.path === dir) { parent = e; return; }
      if (!e.path.startsWith(prefix) || e.path === '') return;
      if (e.kind === 'f') sizes.set(e.path, e.size);
      const rest = e.path.slice(prefix.length);
      const slash = rest.indexOf('/');
      if (slash < 0) {
        const item: FolderItem = { entry: e, name: rest, files: e.kind === 'f' || e.kind === 'h' ? 1 : 0, bytes: e.kind === 'f' ? e.size : 0 };
        items.push(item);
        if (e.kind === 'd') byChild.set(rest, item);
        return;
      }
      const top = byChild.get(rest.slice(0, slash));
      if (!top) return;
      if (e.kind === 'f') { top.files++; top.bytes += e.size; } else if (e.kind === 'h') {
        top.files++;
        // A hard link whose first path is outside this folder is written in full when the folder is restored.
        if (!e.link.startsWith(`${top.entry.path}/`)) top.bytes += sizes.get(e.link) ?? 0;
      }
    });
    if (!parent || (parent as Entry).kind !== 'd') throw new NoSuchFolder('not a folder of this snapshot');
    for (const item of items) if (item.entry.kind === 'h') item.bytes = sizes.get(item.entry.link) ?? 0;
    items.sort(byName);
    return { dir: parent, items };
  });
}

/** The folder's listing, from memory when it was read recently. */
export async function folderListing(ctx: Context, s: SnapshotRecord, dir: BytePath): Promise<FolderListing> {
  const key = `${snapshotKey(s)}\0${dir}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const listing = await readFolder(ctx, s, dir);
  cache.set(key, listing);
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
