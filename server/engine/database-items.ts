import zlib from 'node:zlib';
import crypto from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Account, MysqlCredentials } from '../panels/types.js';
import type { Destination } from '../destinations/types.js';
import { dumpDatabase, dumpGrants } from './database/dump.js';
import { restoreDatabase, restoreGrants, type GrantsGuard } from './database/restore.js';
import { layout, type ManifestDatabase } from './snapshot-layout.js';
import type { Politeness } from '../util/politeness.js';

/** Full dump of every database of the account (each run), and its users with grants. */
export async function backupDatabases(opts: {
  account: Account; dest: Destination; dir: string; creds: MysqlCredentials; databases: boolean; users: boolean;
  politeness?: Politeness; signal?: AbortSignal;
}): Promise<{ databases: ManifestDatabase[]; grants: string | null; grantsSha256: string | null }> {
  const { account, dest, dir, creds } = opts;
  const databases: ManifestDatabase[] = [];
  if (opts.databases) {
    for (const name of account.databases) {
      const file = layout.database(name);
      let bytes = 0;
      const hash = crypto.createHash('sha256');
      const out = dest.createWriteStream(`${dir}/${file}`);
      const gzip = zlib.createGzip({ level: 6 });
      gzip.on('data', (c: Buffer) => { bytes += c.length; hash.update(c); });
      opts.signal?.throwIfAborted();
      // Aborting destroys the streams, and a destroyed dump stops its tool.
      const dump = dumpDatabase(creds, name, opts.politeness);
      if (opts.signal) await pipeline(dump, gzip, out, { signal: opts.signal });
      else await pipeline(dump, gzip, out);
      const binlog = dump.binlogCoordinates();
      databases.push({ name, file, bytes, sha256: hash.digest('hex'), ...(binlog ? { binlog } : {}) });
    }
  }
  let grants: string | null = null;
  let grantsSha256: string | null = null;
  if (opts.users && account.databaseUsers.length > 0) {
    const sql = await dumpGrants(creds, account.databaseUsers);
    if (sql) {
      await dest.writeFile(`${dir}/${layout.grants}`, sql);
      grants = layout.grants;
      grantsSha256 = crypto.createHash('sha256').update(sql).digest('hex');
    }
  }
  return { databases, grants, grantsSha256 };
}

export async function restoreDatabaseItem(creds: MysqlCredentials, target: string, sql: Readable): Promise<void> {
  await restoreDatabase(creds, target, sql);
}
/** The account's users and grants; statements reaching beyond the account are skipped and returned. */
export async function restoreDatabaseGrants(creds: MysqlCredentials, sql: string, renames: Map<string, string>, guard: GrantsGuard): Promise<{ skipped: string[] }> {
  return restoreGrants(creds, sql, renames, guard);
}
