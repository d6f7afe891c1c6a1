/**
 * Ships the server's binary logs to the provider destinations marked for them: `FLUSH BINARY
 * LOGS` closes the log being written, then every closed log not shipped yet is copied (the
 * data, flushed, under a temporary name; renamed; the folder flushed; then the catalog row with
 * its size, hash and first/last event time). Retention removes the logs older than the one the
 * oldest kept dump starts in.
 *
 * The logs are the server's files: the path comes from the server (`log_bin_basename`,
 * `SHOW BINARY LOGS`), and before root reads anything there every folder on the way and the
 * file itself must be the server's or root's and writable by nobody else, so an account
 * cannot swap a log for a link to another file.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import type { MysqlCredentials } from '../../panels/types.js';
import type { Destination } from '../../destinations/types.js';
import type { Store } from '../../store/index.js';
import type { ShippedBinlog } from '../../store/binlogs.js';
import { withConnection } from './connection.js';
import { BINLOG_FILE_NAME } from './dump-coordinates.js';
import { BINLOG_DIR, binlogPath, binlogSeq } from './binlog-layout.js';
import { readBinlogFile } from './binlog-events.js';

/** What a provider adds to the server's configuration to turn binary logging on (Tidemark never does). */
export const ENABLE_BINLOG_LINES = [
  '[mysqld]',
  'log_bin          = /var/lib/mysql/mysql-bin',
  'binlog_format    = ROW',
  'server_id        = 1',
  'expire_logs_days = 7',
];

export interface BinlogServerStatus {
  logBin: boolean;
  format: string | null;
  basename: string | null;
  /** The logs the server has, oldest first (the last is being written). */
  files: { file: string; size: number }[];
  /** When logging is off or not row-based: what to set, for pages and the CLI. */
  advice: string | null;
}

export async function serverStatus(creds: MysqlCredentials): Promise<BinlogServerStatus> {
  return withConnection(creds, async (conn) => {
    const [rows] = await conn.query<RowDataPacket[]>('SELECT @@GLOBAL.log_bin AS b, @@GLOBAL.binlog_format AS f, @@GLOBAL.log_bin_basename AS n');
    const r = (rows[0] ?? {}) as { b?: unknown; f?: unknown; n?: unknown };
    const logBin = Number(r.b) === 1;
    const format = r.f == null ? null : String(r.f);
    if (!logBin) {
      return { logBin, format, basename: null, files: [], advice: `binary logging is off on the MySQL server: point-in-time restores need it. Add to the server's configuration (e.g. /etc/mysql/mariadb.conf.d/60-binlog.cnf) and restart it:\n${ENABLE_BINLOG_LINES.join('\n')}` };
    }
    const [logs] = await conn.query<RowDataPacket[]>('SHOW BINARY LOGS');
    const files = logs.map((l) => ({ file: String(l.Log_name), size: Number(l.File_size) }));
    const advice = format === 'ROW' ? null : `binlog_format is ${format}: point-in-time restores need ROW (set binlog_format = ROW in the server's configuration)`;
    return { logBin, format, basename: r.n == null ? null : String(r.n), files, advice };
  });
}

/** Who may own what root reads of the server's: root and the server's own user. */
function checkServerOwned(p: string, st: fs.Stats, server: { uid: number; gid: number }, what: string): void {
  if (st.uid !== 0 && st.uid !== server.uid) throw new Error(`${what} ${p} belongs to uid ${st.uid}, neither root nor the database server: not read`);
  // Group-writable is fine when the group is root's or the server's own (the server writes its logs 0660).
  const othersWrite = (st.mode & 0o002) !== 0 || ((st.mode & 0o020) !== 0 && st.gid !== 0 && st.gid !== server.gid);
  const sticky = (st.mode & 0o1000) !== 0;
  if (othersWrite && !(st.isDirectory() && sticky)) throw new Error(`${what} ${p} is writable by others: not read`);
}

/** The primary group of a uid, from /etc/passwd (the server writes its files with it). */
function primaryGroupOf(uid: number): number | null {
  try {
    for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length >= 4 && Number(f[2]) === uid && /^\d+$/.test(f[3]!)) return Number(f[3]);
    }
  } catch { /* none */ }
  return null;
}

/**
 * The real folder of the logs, checked: every folder from / down is root's or the server's
 * (a world-writable one only with the sticky bit, like /tmp), and so is the folder itself.
 */
export function checkLogFolder(basename: string): { dir: string; server: { uid: number; gid: number } } {
  if (!path.isAbsolute(basename)) throw new Error(`log_bin_basename ${basename} is not an absolute path`);
  const dir = fs.realpathSync(path.dirname(basename));
  const serverUid = fs.statSync(dir).uid;
  const serverGid = primaryGroupOf(serverUid) ?? fs.statSync(dir).gid;
  const server = { uid: serverUid, gid: serverGid };
  if (serverUid >= 1000 || serverGid >= 1000) {
    // A server run by an ordinary user (uid ≥ 1000) could be an account's own.
    throw new Error(`the binary logs' folder ${dir} belongs to uid ${serverUid}, not a system user: not read`);
  }
  const parts = dir.split('/').filter(Boolean);
  let cur = '/';
  checkServerOwned(cur, fs.statSync(cur), server, 'folder');
  for (const part of parts) {
    cur = path.join(cur, part);
    checkServerOwned(cur, fs.lstatSync(cur), server, 'folder');
  }
  return { dir, server };
}

/** First (the log's start) and last event time of a closed log, as ISO strings. */
export async function eventTimes(file: string): Promise<{ first: string | null; last: string | null }> {
  let first: number | null = null;
  let last: number | null = null;
  for await (const e of readBinlogFile(file, { complete: true })) {
    if (e.timestamp === 0) continue;
    first ??= e.timestamp;
    last = Math.max(last ?? 0, e.timestamp);
  }
  const iso = (s: number | null): string | null => (s === null ? null : new Date(s * 1000).toISOString());
  return { first: iso(first), last: iso(last) };
}

export interface ShipEnv {
  store: Store;
  withDestination<T>(destinationId: number, fn: (d: Destination) => Promise<T>): Promise<T>;
  mysql(): Promise<MysqlCredentials>;
}

export interface ShipReport {
  logBin: boolean;
  advice: string | null;
  shipped: { destination: string; file: string; size: number }[];
  removed: { destination: string; file: string }[];
  /** Logs the server no longer has that were never shipped: the window cannot cross them. */
  gaps: string[];
  failed: { destination: string; error: string }[];
  destinations: string[];
}

/** The provider's enabled destinations marked for binary logs (never an account's or a reseller's). */
export function binlogDestinations(store: Store): { id: number; name: string }[] {
  const marked = new Set(store.binlogs.markedDestinations());
  return store.destinations.list().filter((d) => marked.has(d.id) && d.owner === 'root' && d.enabled).map((d) => ({ id: d.id, name: d.name }));
}

/** Opens `file` for reading without following a link and checks it is the server's regular file. */
function openLog(dir: string, file: string, server: { uid: number; gid: number }): { fd: number; size: number } {
  const p = path.join(dir, file);
  const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  const st = fs.fstatSync(fd);
  try {
    if (!st.isFile()) throw new Error(`${p} is not a regular file: not read`);
    checkServerOwned(p, st, server, 'binary log');
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  return { fd, size: st.size };
}

async function shipOne(dest: Destination, fd: number, file: string): Promise<{ sha256: string; size: number }> {
  await dest.mkdir(BINLOG_DIR);
  const tmp = `${BINLOG_DIR}/.partial-${crypto.randomBytes(4).toString('hex')}-${file}`;
  const hash = crypto.createHash('sha256');
  let size = 0;
  const src = fs.createReadStream('', { fd, autoClose: true });
  src.on('data', (c: Buffer | string) => { const b = Buffer.isBuffer(c) ? c : Buffer.from(c); hash.update(b); size += b.length; });
  const { pipeline } = await import('node:stream/promises');
  try {
    await pipeline(src, dest.createWriteStream(tmp));
    await dest.flush([BINLOG_DIR]);
    await dest.rename(tmp, binlogPath(file));
    await dest.flush([BINLOG_DIR]);
  } catch (err) {
    await dest.remove(tmp).catch(() => undefined);
    throw err;
  }
  return { sha256: hash.digest('hex'), size };
}

/** Flushes the current log, ships what is new, applies retention. */
export async function shipBinlogs(env: ShipEnv, opts: { flush?: boolean } = {}): Promise<ShipReport> {
  const destinations = binlogDestinations(env.store);
  const report: ShipReport = { logBin: false, advice: null, shipped: [], removed: [], gaps: [], failed: [], destinations: destinations.map((d) => d.name) };
  const creds = await env.mysql();
  let status = await serverStatus(creds);
  report.logBin = status.logBin;
  report.advice = status.advice;
  if (!status.logBin || destinations.length === 0) return report;
  if (opts.flush !== false) {
    await withConnection(creds, (conn) => conn.query('FLUSH BINARY LOGS'));
    status = await serverStatus(creds);
  }
  const { dir, server } = checkLogFolder(status.basename!);
  // The last log is being written: only closed ones are shipped.
  const closed = status.files.slice(0, -1).filter((f) => BINLOG_FILE_NAME.test(f.file));
  const firstOnServer = status.files[0] ? binlogSeq(status.files[0].file) : null;

  for (const d of destinations) {
    const have = new Map(env.store.binlogs.files(d.id).map((f) => [f.file, f]));
    const newest = [...have.values()].reduce((m, f) => Math.max(m, f.seq), 0);
    if (newest > 0 && firstOnServer !== null && firstOnServer > newest + 1) {
      report.gaps.push(`${d.name}: logs ${newest + 1} to ${firstOnServer - 1} were removed from the server before they were shipped`);
    }
    try {
      await env.withDestination(d.id, async (dest) => {
        for (const f of closed) {
          const known = have.get(f.file);
          if (known) {
            if (known.size !== f.size) throw new Error(`the server's ${f.file} (${f.size} bytes) is not the one shipped (${known.size} bytes): were the logs reset (RESET MASTER)?`);
            continue;
          }
          const { fd } = openLog(dir, f.file, server);
          const times = await eventTimes(`/proc/self/fd/${fd}`);
          const { sha256, size } = await shipOne(dest, fd, f.file);
          const row: ShippedBinlog = {
            destinationId: d.id, file: f.file, seq: binlogSeq(f.file), size, sha256,
            firstEventAt: times.first, lastEventAt: times.last, shippedAt: new Date().toISOString(),
          };
          env.store.binlogs.addFile(row);
          report.shipped.push({ destination: d.name, file: f.file, size });
        }
        report.removed.push(...(await applyBinlogRetention(env.store, d, dest)));
      });
    } catch (err) {
      report.failed.push({ destination: d.name, error: (err as Error).message });
    }
  }
  return report;
}

/** Removes from `d` the logs older than the one the oldest kept dump (with a log position) starts in. */
async function applyBinlogRetention(store: Store, d: { id: number; name: string }, dest: Destination): Promise<{ destination: string; file: string }[]> {
  // Only dumps on the provider's destinations are starting points (an account's own are never used).
  const provider = new Set(store.destinations.list().filter((x) => x.owner === 'root').map((x) => x.id));
  const positions = store.binlogs.allPositions().filter((p) => provider.has(p.destinationId));
  if (positions.length === 0) return [];
  const oldest = Math.min(...positions.map((p) => binlogSeq(p.binlogFile)));
  const removed: { destination: string; file: string }[] = [];
  for (const f of store.binlogs.files(d.id)) {
    if (f.seq >= oldest) continue;
    await dest.remove(binlogPath(f.file));
    store.binlogs.removeFile(d.id, f.file);
    removed.push({ destination: d.name, file: f.file });
  }
  if (removed.length) await dest.flush([BINLOG_DIR]);
  return removed;
}
