/** What a snapshot records of the WordPress sites it holds (manifest `sites`, catalog `snapshots.sites`). */
import { SAFE_PREFIX } from './wp-config.js';

export interface SiteRecord {
  /** The installation's folder, relative to the home. */
  folder: string;
  /** Its wp-config.php, relative to the home (in the folder or its parent). */
  config: string;
  /** Null when the configuration was not understood. */
  database: string | null;
  prefix: string | null;
  /** Why this site cannot be restored as a site (null: it can). */
  problem: string | null;
}

/** At most this many sites per snapshot. */
export const MAX_SITES = 500;

/** A relative path inside a home: no leading `/`, no empty, `.` or `..` part, no NUL, UTF-8 text. */
export function isHomeRelative(p: unknown, allowEmpty: boolean): p is string {
  if (typeof p !== 'string' || p.length > 4096) return false;
  if (p === '') return allowEmpty;
  return !p.startsWith('/') && p.split('/').every((c) => c !== '' && c !== '.' && c !== '..' && !c.includes('\0'));
}

/** A site that can be restored: understood, its database the account's, a safe prefix. */
export const restorable = (s: SiteRecord): s is SiteRecord & { database: string; prefix: string } =>
  s.problem === null && s.database !== null && s.prefix !== null && SAFE_PREFIX.test(s.prefix) && s.folder !== '';

/** The key a site is known by across snapshots: its folder (a site that moved is another site). */
export const siteKey = (s: Pick<SiteRecord, 'folder'>): string => s.folder;

/**
 * Which of `tables` are the site's: they start with its prefix, and not with the longer prefix of
 * another site in the same database (`wp_` and `wp_shop_` side by side: `wp_shop_posts` is the
 * second one's). Compared without regard to case, as the server may with lower_case_table_names.
 */
export function tablesOfSite(site: { database: string; prefix: string }, sites: readonly SiteRecord[], tables: readonly string[]): string[] {
  const own = site.prefix.toLowerCase();
  const longer = sites
    .filter((s) => s.database !== null && s.prefix !== null && s.database.toLowerCase() === site.database.toLowerCase())
    .map((s) => s.prefix!.toLowerCase())
    .filter((p) => p.length > own.length && p.startsWith(own));
  return tables.filter((t) => {
    const l = t.toLowerCase();
    return l.startsWith(own) && !longer.some((p) => l.startsWith(p));
  });
}
