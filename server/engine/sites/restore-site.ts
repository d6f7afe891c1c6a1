/**
 * Restores one WordPress site from one snapshot, as one action: the files of its folder (and its
 * wp-config.php when that lies in the parent folder), and the tables of its database that carry
 * its prefix. Nothing else of the account: other folders, the other tables of the same database
 * (another site's, with another prefix) and other databases stay as they are. The site is the
 * one the SNAPSHOT recorded; the live wp-config.php is not read again.
 */
import zlib from 'node:zlib';
import type { Account, MysqlCredentials } from '../../panels/types.js';
import type { DatabaseOwnership } from '../../panels/database-owner.js';
import type { Destination } from '../../destinations/types.js';
import { fromUtf8 } from '../../util/byte-path.js';
import { layout, type Manifest } from '../snapshot-layout.js';
import { checkStoredHash, readManifest, restoreSnapshot, type RestoreOutcome, type RestoreProgress } from '../restore.js';
import { restorable, tablesOfSite, type SiteRecord } from './site-record.js';
import type { LoadedDump } from '../database/table-swap.js';

export class SiteRefusedError extends Error {}

/**
 * The site at `folder` in a snapshot's manifest (or `given`, recorded by another snapshot, for a
 * restore to a moment), checked to be restorable by `account` now. `needsDump`: its tables come
 * from this snapshot's dump.
 */
export function siteToRestore(manifest: Manifest, account: string, folder: string, ownership: DatabaseOwnership, given?: SiteRecord, needsDump = true): SiteRecord & { database: string; prefix: string } {
  const site = given ?? (manifest.sites ?? []).find((s) => s.folder === folder);
  if (!site || site.folder !== folder) throw new SiteRefusedError(`snapshot ${manifest.id} records no WordPress site in ${JSON.stringify(folder)}`);
  if (!restorable(site)) throw new SiteRefusedError(`the WordPress site in ${folder} cannot be restored as a site: ${site.problem ?? 'its configuration was not understood'}`);
  if (!ownership.owns(account, 'database', site.database)) throw new SiteRefusedError(`database ${site.database} is not a database of account ${account}: the site is not restored`);
  if (needsDump && !manifest.databases.some((d) => d.name === site.database)) throw new SiteRefusedError(`snapshot ${manifest.id} holds no dump of database ${site.database}: the site is not restored`);
  if (!manifest.items.includes('files')) throw new SiteRefusedError(`snapshot ${manifest.id} holds no files`);
  return site;
}

/** Folders of other sites inside a site's folder (a shop in `public_html/shop` beside the blog in `public_html`). */
export function nestedSiteFolders(site: Pick<SiteRecord, 'folder'>, known: readonly Pick<SiteRecord, 'folder'>[]): string[] {
  return [...new Set(known.map((s) => s.folder).filter((f) => f.startsWith(`${site.folder}/`)))];
}

/** The paths of the home a site's restore writes: its folder, and its wp-config.php when that is outside it. */
export function sitePaths(site: Pick<SiteRecord, 'folder' | 'config'>): string[] {
  const inside = site.config.startsWith(`${site.folder}/`);
  return inside ? [site.folder] : [site.folder, site.config];
}

export interface SiteRestoreRequest {
  account: Account;
  destination: Destination;
  snapshotId: string;
  folder: string;
  mysql: () => Promise<MysqlCredentials>;
  databaseOwnership: () => Promise<DatabaseOwnership>;
  onProgress?: (p: RestoreProgress) => void;
  /** Sites known otherwise (other snapshots): their longer prefixes are never touched. */
  otherSites?: readonly SiteRecord[];
  /**
   * To a moment: the site as another snapshot recorded it, and its database as of the moment
   * (engine/database/point-in-time.ts) loaded into a database of the account; the snapshot gives the files.
   */
  atMoment?: { site: SiteRecord; load: (database: string) => Promise<LoadedDump> };
}

export interface SiteRestoreOutcome extends RestoreOutcome {
  site: { folder: string; database: string; prefix: string; tables: string[]; removedTables: string[] };
}

export async function restoreSiteFromSnapshot(req: SiteRestoreRequest): Promise<SiteRestoreOutcome> {
  const { account, destination: dest, snapshotId } = req;
  const dir = layout.snapshotDir(account.username, snapshotId);
  const manifest = await readManifest(dest, account.username, snapshotId);
  const ownership = await req.databaseOwnership();
  const site = siteToRestore(manifest, account.username, req.folder, ownership, req.atMoment?.site, !req.atMoment);
  const item = manifest.databases.find((d) => d.name === site.database);
  // The whole dump is checked before any statement of it runs.
  if (!req.atMoment && item?.sha256) await checkStoredHash(dest, `${dir}/${layout.database(site.database)}`, item.sha256, `snapshot ${snapshotId} of ${account.username}: ${layout.database(site.database)}`);
  // Another site in the same database with a longer prefix (`wp_` and `wp_shop_`) keeps its
  // tables, whether the snapshot, another snapshot or the home as it is now knows of it. The live
  // wp-config.php files can only protect more tables here, never choose what is restored.
  const known: SiteRecord[] = [...(manifest.sites ?? []), ...(req.otherSites ?? []), ...(req.atMoment ? [req.atMoment.site] : [])];
  try {
    const { discoverSites } = await import('./discover-sites.js');
    known.push(...(await discoverSites(account, { excludes: [], ownership: async () => ownership })).sites);
  } catch { /* the home could not be read: the snapshot's and the catalog's sites still count */ }
  const creds = await req.mysql();
  const { loadIntoScratch, swapTables } = await import('../database/table-swap.js');
  // Loaded first, before anything of the site changes: a dump that does not load changes nothing.
  const loaded = req.atMoment
    ? await req.atMoment.load(site.database)
    : await loadIntoScratch(creds, dest.createReadStream(`${dir}/${layout.database(site.database)}`).pipe(zlib.createGunzip()));
  try {
    const files = await restoreSnapshot({
      account, destination: dest, snapshotId, paths: sitePaths(site).map(fromUtf8), files: true, databases: [], intoFolder: false,
      excludePaths: nestedSiteFolders(site, known).map(fromUtf8), moveAsideExtra: true,
      mysql: req.mysql, databaseOwnership: async () => ownership, ...(req.onProgress ? { onProgress: req.onProgress } : {}),
    });
    const swapped = await swapTables(creds, loaded, site.database, (tables) => tablesOfSite(site, known, tables));
    return {
      ...files,
      databases: [],
      databaseWarnings: [...files.databaseWarnings, ...swapped.warnings],
      site: { folder: site.folder, database: site.database, prefix: site.prefix, tables: swapped.restored, removedTables: swapped.removed },
    };
  } finally {
    await loaded.drop().catch(() => undefined);
  }
}
