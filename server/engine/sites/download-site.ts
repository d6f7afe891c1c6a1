/**
 * One archive of a WordPress site from a snapshot, for a migration: `files/<its folder>`, a dump
 * of its tables only (`database/<database>.sql.gz`, plain SQL without CREATE DATABASE / USE:
 * it loads into any database) and `site.json` saying what the archive holds.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import type { MysqlCredentials } from '../../panels/types.js';
import type { Destination } from '../../destinations/types.js';
import { fromUtf8 } from '../../util/byte-path.js';
import { layout } from '../snapshot-layout.js';
import { checkStoredHash, readManifest } from '../restore.js';
import { downloadSnapshot } from '../download.js';
import { restorable, tablesOfSite } from './site-record.js';
import { nestedSiteFolders, SiteRefusedError, sitePaths } from './restore-site.js';

export async function downloadSite(req: {
  destination: Destination; account: string; snapshotId: string; folder: string; out: Writable; mysql: () => Promise<MysqlCredentials>;
}): Promise<{ files: number; bytes: number; tables: string[] }> {
  const { destination: dest, account, snapshotId } = req;
  const dir = layout.snapshotDir(account, snapshotId);
  const manifest = await readManifest(dest, account, snapshotId);
  const site = (manifest.sites ?? []).find((s) => s.folder === req.folder);
  if (!site) throw new SiteRefusedError(`snapshot ${snapshotId} records no WordPress site in ${JSON.stringify(req.folder)}`);
  if (!restorable(site)) throw new SiteRefusedError(`the WordPress site in ${site.folder} cannot be downloaded as a site: ${site.problem ?? 'its configuration was not understood'}`);
  const item = manifest.databases.find((d) => d.name === site.database);
  if (!item) throw new SiteRefusedError(`snapshot ${snapshotId} holds no dump of database ${site.database}`);
  if (item.sha256) await checkStoredHash(dest, `${dir}/${layout.database(site.database)}`, item.sha256, `snapshot ${snapshotId} of ${account}: ${layout.database(site.database)}`);
  const creds = await req.mysql();
  const { loadIntoScratch } = await import('../database/table-swap.js');
  const { dumpDatabase } = await import('../database/dump.js');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-site-'));
  fs.chmodSync(tmp, 0o700);
  const loaded = await loadIntoScratch(creds, dest.createReadStream(`${dir}/${layout.database(site.database)}`).pipe(zlib.createGunzip()));
  try {
    const { withConnection } = await import('../database/connection.js');
    const tables = await withConnection(creds, async (conn) => {
      const [rows] = await conn.query({ sql: `SHOW FULL TABLES FROM \`${loaded.database.replace(/`/g, '``')}\``, rowsAsArray: true });
      return (rows as unknown[][]).filter((r) => String(r[1]).toUpperCase() !== 'VIEW').map((r) => String(r[0]));
    });
    const chosen = tablesOfSite(site, manifest.sites ?? [], tables);
    const dumpFile = path.join(tmp, 'tables.sql.gz');
    if (chosen.length > 0) {
      await pipeline(dumpDatabase(creds, loaded.database, undefined, chosen), zlib.createGzip({ level: 6 }), fs.createWriteStream(dumpFile, { mode: 0o600 }));
    } else {
      fs.writeFileSync(dumpFile, zlib.gzipSync('-- no tables with this prefix\n'), { mode: 0o600 });
    }
    const description = {
      format: 'tidemark-site', account, snapshot: snapshotId, takenAt: manifest.finishedAt,
      folder: site.folder, config: site.config, database: site.database, prefix: site.prefix, tables: chosen,
      databaseDump: `database/${encodeURIComponent(site.database)}.sql.gz`,
    };
    const r = await downloadSnapshot({
      destination: dest, account, snapshotId, paths: sitePaths(site).map(fromUtf8), databases: [], out: req.out,
      excludePaths: nestedSiteFolders(site, manifest.sites ?? []).map(fromUtf8),
      extra: [{ path: description.databaseDump, file: dumpFile }, { path: 'site.json', text: JSON.stringify(description, null, 2) + '\n' }],
    });
    return { ...r, tables: chosen };
  } finally {
    await loaded.drop().catch(() => undefined);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
