/**
 * An account's WordPress sites, as its snapshots recorded them (engine/sites/): listing them,
 * restoring one to a snapshot as ONE restore task (its folder and its tables, nothing else), and
 * downloading one as an archive. The live wp-config.php is never what decides what is restored.
 */
import type { Writable } from 'node:stream';
import type { SnapshotRecord } from '../store/snapshots.js';
import { fromUtf8 } from '../util/byte-path.js';
import { restorable, type SiteRecord } from '../engine/sites/site-record.js';
import { sitePaths } from '../engine/sites/restore-site.js';
import { UserError, type Context } from './context.js';
import { PROVIDER, ROOT, type Actor } from './actor.js';
import { download, findSnapshot, listSnapshots, prepareDownload, restore, type RestoreHooks, type RestoreInput } from './snapshots.js';
import type { RestoreOutcome } from '../engine/restore.js';

export interface SiteSnapshot {
  id: string;
  destinationId: number;
  destination: string | null;
  finishedAt: string;
  /** Whether this snapshot can bring the site back (it is understood there and its database is in it). */
  restorable: boolean;
}

export interface SiteView {
  folder: string;
  config: string;
  database: string | null;
  prefix: string | null;
  /** As the newest snapshot that records the site says; null: restorable. */
  problem: string | null;
  /** Newest first; at most `MAX_LISTED`. */
  snapshots: SiteSnapshot[];
  snapshotCount: number;
}

const MAX_LISTED = 20;

/** A snapshot a site comes back from: its files and its database's dump, not damaged, on the provider's destination (a dump is never loaded from a destination the account controls). */
const canRestoreFrom = (ctx: Context, s: SnapshotRecord, site: SiteRecord): boolean =>
  restorable(site) && s.items.includes('files') && s.databases.includes(site.database!) && s.status !== 'damaged'
  && ctx.store.destinations.byId(s.destinationId)?.owner === PROVIDER;

/** The account's sites, from the snapshots `actor` may see (newest first). */
export async function listSites(ctx: Context, account: string, actor: Actor = ROOT): Promise<SiteView[]> {
  const snapshots = await listSnapshots(ctx, { account }, actor);
  const byFolder = new Map<string, SiteView>();
  for (const s of snapshots) {
    for (const site of s.sites ?? []) {
      let view = byFolder.get(site.folder);
      if (!view) {
        // The newest snapshot that records the site describes it.
        view = { folder: site.folder, config: site.config, database: site.database, prefix: site.prefix, problem: site.problem, snapshots: [], snapshotCount: 0 };
        byFolder.set(site.folder, view);
      }
      view.snapshotCount++;
      if (view.snapshots.length < MAX_LISTED) {
        view.snapshots.push({
          id: s.id, destinationId: s.destinationId, destination: ctx.store.destinations.byId(s.destinationId)?.name ?? null,
          finishedAt: s.finishedAt, restorable: canRestoreFrom(ctx, s, site),
        });
      }
    }
  }
  return [...byFolder.values()].sort((a, b) => (a.folder < b.folder ? -1 : a.folder > b.folder ? 1 : 0));
}

/** The site at `folder` in snapshot `s` (already found with the actor's rights), checked to be restorable from it. */
export function siteOf(ctx: Context, s: SnapshotRecord, folder: string): SiteRecord & { database: string; prefix: string } {
  const site = (s.sites ?? []).find((x) => x.folder === folder);
  if (!site) throw new UserError(`snapshot ${s.id} records no WordPress site in ${JSON.stringify(folder)}`, 'not-found');
  if (!restorable(site)) throw new UserError(`the WordPress site in ${folder} cannot be restored as a site: ${site.problem ?? 'its configuration was not understood'}`);
  const dest = ctx.store.destinations.byId(s.destinationId);
  if (dest && dest.owner !== PROVIDER) throw new UserError(`snapshot ${s.id} is on destination "${dest.name}" of account ${dest.owner}: databases, and so sites, are not restored from a destination the account controls`);
  if (!canRestoreFrom(ctx, s, site)) throw new UserError(`snapshot ${s.id} holds no usable dump of database ${site.database}: the site is not restored from it`);
  return site;
}

/** What restore() is given for a site: its paths and database, and the site itself. */
export const siteRestoreInput = (site: SiteRecord & { database: string }): RestoreInput => ({
  paths: sitePaths(site).map(fromUtf8), databases: [{ name: site.database }], intoFolder: false, site: site.folder,
});

/** The snapshot a site is restored or downloaded from: the one named, else the newest that can. */
export async function snapshotForSite(ctx: Context, account: string, folder: string, actor: Actor, snapshotId?: string, destination?: string): Promise<{ snapshot: SnapshotRecord; site: SiteRecord & { database: string; prefix: string } }> {
  if (snapshotId !== undefined) {
    const s = await findSnapshot(ctx, snapshotId, destination, actor);
    if (s.account !== account) throw new UserError(`no snapshot ${snapshotId}`);
    return { snapshot: s, site: siteOf(ctx, s, folder) };
  }
  const candidates = await listSnapshots(ctx, destination !== undefined ? { account, destination } : { account }, actor);
  for (const s of candidates) {
    const site = (s.sites ?? []).find((x) => x.folder === folder);
    if (site && restorable(site) && canRestoreFrom(ctx, s, site)) return { snapshot: s, site };
  }
  throw new UserError(`no snapshot of ${account} can restore a WordPress site in ${JSON.stringify(folder)} (see site list)`, 'not-found');
}

export interface SiteRestoreResult extends RestoreOutcome {
  task: number;
  snapshot: string;
  site?: { folder: string; database: string; prefix: string; tables: string[]; removedTables: string[] };
}

/** Restores a site to a snapshot: one restore task, its files and its tables. */
export async function restoreSite(ctx: Context, input: { account: string; folder: string; snapshot?: string; destination?: string }, actor: Actor = ROOT, hooks: RestoreHooks = {}): Promise<SiteRestoreResult> {
  const { snapshot, site } = await snapshotForSite(ctx, input.account, input.folder, actor, input.snapshot, input.destination);
  const outcome = await restore(ctx, snapshot, siteRestoreInput(site), actor, hooks);
  return { ...outcome, snapshot: snapshot.id };
}

/** A site's archive written into `out` (a page streams it; see downloadSiteToFile for the CLI). */
export async function prepareSiteDownload(ctx: Context, input: { account: string; folder: string; snapshot?: string; destination?: string }, actor: Actor = ROOT): Promise<{ snapshot: SnapshotRecord; write: (out: Writable) => Promise<{ files: number; bytes: number }> }> {
  const { snapshot, site } = await snapshotForSite(ctx, input.account, input.folder, actor, input.snapshot, input.destination);
  const write = await prepareDownload(ctx, snapshot, { paths: sitePaths(site).map(fromUtf8), databases: [site.database], site: site.folder }, actor);
  return { snapshot, write };
}

export async function downloadSiteToFile(ctx: Context, input: { account: string; folder: string; snapshot?: string; destination?: string; out: string }, actor: Actor = ROOT): Promise<{ files: number; bytes: number; out: string; snapshot: string }> {
  const { snapshot, site } = await snapshotForSite(ctx, input.account, input.folder, actor, input.snapshot, input.destination);
  const r = await download(ctx, snapshot, { paths: sitePaths(site).map(fromUtf8), databases: [site.database], site: site.folder, out: input.out }, actor);
  return { ...r, snapshot: snapshot.id };
}

/**
 * Restores a site to a moment, as one restore task: the files from the newest snapshot of the
 * provider's taken before the moment (frequent file backups make it close), the tables of its
 * prefix as of the moment (the newest dump before it and the binary logs after it). The site is
 * as the newest snapshot that records it says; the moment must be in the covered window.
 */
export async function restoreSiteAt(ctx: Context, input: { account: string; folder: string; moment: Date }, actor: Actor = ROOT, hooks: RestoreHooks = {}): Promise<SiteRestoreResult & { moment: string; filesFrom: string }> {
  const { snapshot, restoreInput } = await planSiteAt(ctx, input, actor);
  const outcome = await restore(ctx, snapshot, restoreInput, actor, hooks);
  return { ...outcome, snapshot: snapshot.id, filesFrom: snapshot.id, moment: input.moment.toISOString() };
}

/** What restoreSiteAt runs: the snapshot the files come from, and the restore's input (the pages hand it to their restore runner). */
export async function planSiteAt(ctx: Context, input: { account: string; folder: string; moment: Date }, actor: Actor): Promise<{ snapshot: SnapshotRecord; restoreInput: RestoreInput }> {
  const t = input.moment.getTime();
  if (Number.isNaN(t)) throw new UserError('the moment is not a valid date and time', 'invalid-input');
  const visible = await listSnapshots(ctx, { account: input.account }, actor);
  const recorded = (s: SnapshotRecord): (SiteRecord & { database: string; prefix: string }) | null => {
    const site = (s.sites ?? []).find((x) => x.folder === input.folder);
    return site && restorable(site) ? site : null;
  };
  // The site as the newest snapshot up to the moment records it (or, failing that, the newest at all).
  const before = visible.filter((s) => Date.parse(s.finishedAt) <= t);
  const site = before.map(recorded).find((x) => x !== null) ?? visible.map(recorded).find((x) => x !== null);
  if (!site) throw new UserError(`no snapshot of ${input.account} records a restorable WordPress site in ${JSON.stringify(input.folder)} (see site list)`, 'not-found');
  // Files: the newest snapshot with files finished before the moment, on a provider destination
  // (the tables come through the server's own logs, which an account's destination never holds).
  const filesFrom = before.find((s) => s.items.includes('files') && s.status !== 'damaged' && ctx.store.destinations.byId(s.destinationId)?.owner === PROVIDER);
  if (!filesFrom) throw new UserError(`no snapshot of the files of ${input.account} was taken before ${input.moment.toISOString()} on the provider's destinations`, 'refused');
  const { databaseWindow } = await import('./point-in-time.js');
  const w = await databaseWindow(ctx, actor, input.account, site.database);
  if (!w.from || !w.to || t < Date.parse(w.from) || Math.floor(t / 1000) * 1000 > Date.parse(w.to)) {
    throw new UserError(`database ${site.database}: ${input.moment.toISOString()} is outside the window a restore can reach (${w.from && w.to ? `${w.from} to ${w.to}` : w.advice ?? 'none: it needs a dump taken with binary logging on, and the logs shipped since'})`, 'refused');
  }
  return { snapshot: filesFrom, restoreInput: { ...siteRestoreInput(site), moment: input.moment.toISOString(), siteRecord: site } };
}

/** The window a site's tables can be restored to (binary-log shipping), or null when none is covered or it cannot be told. */
export async function siteWindow(ctx: Context, actor: Actor, account: string, database: string): Promise<{ from: string; to: string } | null> {
  try {
    const { databaseWindow } = await import('./point-in-time.js');
    const w = await databaseWindow(ctx, actor, account, database);
    return w.from && w.to ? { from: w.from, to: w.to } : null;
  } catch {
    return null;
  }
}
