/**
 * Root's side of finding an account's WordPress sites: an account worker reads the home (see
 * find-sites.ts); what it reports is checked here as untrusted input, and each site's database
 * must be the account's by the one ownership rule (panels/database-owner.ts).
 */
import type { Account } from '../../panels/types.js';
import type { DatabaseOwnership } from '../../panels/database-owner.js';
import { spawnAccountWorker } from '../worker/spawn-worker.js';
import type { Politeness } from '../../util/politeness.js';
import { isHomeRelative, MAX_SITES, type SiteRecord } from './site-record.js';
import { isLocalDbHost, SAFE_PREFIX } from './wp-config.js';
import { validateDatabaseName } from '../database/connection.js';

const MAX_REPORT_BYTES = 4 << 20;

export interface DiscoveredSites { sites: SiteRecord[]; warnings: string[] }

/** What the worker reported, checked for shape. */
function parseReport(raw: Buffer): { folder: string; config: string; reading: { ok: boolean; database?: unknown; host?: unknown; prefix?: unknown; reason?: unknown } }[] {
  const doc = JSON.parse(raw.toString('utf8')) as { sites?: unknown; truncated?: unknown };
  if (!doc || !Array.isArray(doc.sites)) throw new Error('the account worker sent no list of sites');
  return doc.sites.slice(0, MAX_SITES).map((s: unknown) => {
    const x = s as { folder?: unknown; config?: unknown; reading?: unknown };
    if (!isHomeRelative(x.folder, true) || !isHomeRelative(x.config, false) || typeof x.reading !== 'object' || x.reading === null) {
      throw new Error('the account worker sent an invalid site');
    }
    return { folder: x.folder, config: x.config, reading: x.reading as { ok: boolean } };
  });
}

/** Judges one reported site: the reasons it cannot be restored as a site, in the account's terms. */
export function judgeSite(account: Account, ownership: DatabaseOwnership | null, r: ReturnType<typeof parseReport>[number]): SiteRecord {
  const base = { folder: r.folder, config: r.config };
  const reading = r.reading;
  if (reading.ok !== true) {
    const reason = typeof reading.reason === 'string' ? reading.reason.slice(0, 200) : 'unknown reason';
    return { ...base, database: null, prefix: null, problem: `wp-config.php not understood: ${reason}` };
  }
  const database = typeof reading.database === 'string' ? reading.database : '';
  const prefix = typeof reading.prefix === 'string' ? reading.prefix : '';
  const host = typeof reading.host === 'string' ? reading.host : null;
  const dbOk = (() => { try { validateDatabaseName(database); return true; } catch { return false; } })();
  const safeDb = dbOk ? database : null;
  const safePrefix = SAFE_PREFIX.test(prefix) ? prefix : null;
  const rec = (problem: string | null): SiteRecord => ({ ...base, database: safeDb, prefix: safePrefix, problem });
  if (!dbOk) return rec('DB_NAME is not a valid database name');
  if (safePrefix === null) return rec('$table_prefix is not a safe table prefix (letters, digits and _ only)');
  if (!isLocalDbHost(host)) return rec(`its database is on another server (DB_HOST ${JSON.stringify(host!.slice(0, 100))})`);
  if (r.folder === '') return rec('WordPress is installed in the home folder itself: restore the home instead');
  if (ownership === null) return rec('the database server could not be asked whose database it is');
  if (!ownership.owns(account.username, 'database', database)) return rec(`database ${database} is not a database of account ${account.username}`);
  return rec(null);
}

/** Finds and judges the WordPress sites of an account. */
export async function discoverSites(account: Account, opts: {
  excludes: string[]; ownership: () => Promise<DatabaseOwnership>; politeness?: Politeness;
}): Promise<DiscoveredSites> {
  const warnings: string[] = [];
  const worker = spawnAccountWorker(account, { mode: 'sites', excludes: opts.excludes }, opts.politeness ? { politeness: opts.politeness } : {});
  worker.input.end();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of worker.output as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_REPORT_BYTES) { worker.child.kill('SIGKILL'); throw new Error('the account worker sent too long a list of sites'); }
    chunks.push(c);
  }
  await worker.done;
  const report = parseReport(Buffer.concat(chunks));
  let ownership: DatabaseOwnership | null = null;
  if (report.some((r) => r.reading.ok === true)) {
    try {
      ownership = await opts.ownership();
    } catch (err) {
      warnings.push(`WordPress sites: whose databases they use could not be checked: ${(err as Error).message}`);
    }
  }
  return { sites: report.map((r) => judgeSite(account, ownership, r)), warnings };
}
