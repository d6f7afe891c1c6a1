/**
 * Point in time: a database, or some of its tables, as they were at a moment, from the newest
 * dump before it and the server's binary logs shipped since (binlog-shipping.ts).
 *
 *   coveredWindow(env, account, database)  → { from, to, … }: the moments a restore can reach
 *   restoreDatabaseAt(env, { account, database, moment, tables?, into?, asNewTables? })
 *   previewAt(env, { account, database, moment, tables? }) → rows now and at the moment, per table
 *
 * Everything is checked here again, whoever calls: the account owns `database` and the target
 * (panels/database-owner.ts); dumps and logs come from provider destinations only, and are
 * checked against their hashes; the replay keeps only the events of `database` (and `tables`)
 * and runs them as a database user that can change the target database and nothing else.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import type { RowDataPacket } from 'mysql2/promise';
import type { MysqlCredentials } from '../../panels/types.js';
import type { DatabaseOwnership } from '../../panels/database-owner.js';
import type { Destination } from '../../destinations/types.js';
import type { Store } from '../../store/index.js';
import type { DumpPosition, ShippedBinlog } from '../../store/binlogs.js';
import { layout } from '../snapshot-layout.js';
import { checkStoredHash } from '../restore.js';
import { quoteIdent, validateDatabaseName, withConnection } from './connection.js';
import { restoreDatabase } from './restore.js';
import { replayBinlogs, type ReplayOutcome } from './binlog-replay.js';
import { binlogPath, binlogSeq } from './binlog-layout.js';
import { isProcessAlive } from '../../util/process-alive.js';

/** What the point-in-time functions need from the rest of Tidemark (services/point-in-time.ts makes one). */
export interface PointInTimeEnv {
  store: Store;
  /** Opens a destination of the catalog (by id) for the time of `fn`. */
  withDestination<T>(destinationId: number, fn: (d: Destination) => Promise<T>): Promise<T>;
  mysql(): Promise<MysqlCredentials>;
  ownership(): Promise<DatabaseOwnership>;
}

export class PointInTimeError extends Error {
  constructor(message: string, readonly code: 'pitr-not-covered' | 'pitr-not-yours' | 'pitr-no-table' | 'pitr-refused') {
    super(message);
  }
}

export interface CoveredWindow {
  account: string;
  database: string;
  /** Earliest moment (ISO, to the second) a restore reaches; null: none (no dump with a log position, or no logs shipped). */
  from: string | null;
  /** Latest moment: the last event of the last log shipped. */
  to: string | null;
  /** Logs missing between shipped ones (purged before they were shipped): moments before a gap need a dump after it. */
  gaps: { after: string; before: string }[];
}

interface Usable { position: DumpPosition; chain: ShippedBinlog[] }

/** The logs shipped (any marked provider destination), one per file, oldest first. */
function shippedLogs(store: Store): ShippedBinlog[] {
  const provider = new Set(store.destinations.list().filter((d) => d.owner === 'root').map((d) => d.id));
  const byFile = new Map<string, ShippedBinlog>();
  for (const f of store.binlogs.files()) if (provider.has(f.destinationId) && !byFile.has(f.file)) byFile.set(f.file, f);
  return [...byFile.values()].sort((a, b) => a.seq - b.seq);
}

/** The consecutive logs from `file` on (stops at the first missing number). */
function chainFrom(logs: ShippedBinlog[], file: string): ShippedBinlog[] {
  const i = logs.findIndex((l) => l.file === file);
  if (i < 0) return [];
  const out = [logs[i]!];
  for (let k = i + 1; k < logs.length && logs[k]!.seq === out[out.length - 1]!.seq + 1; k++) out.push(logs[k]!);
  return out;
}

/** Dumps of the database (on provider destinations, not damaged) with the logs that follow each. */
function usableDumps(store: Store, account: string, database: string): Usable[] {
  const logs = shippedLogs(store);
  const provider = new Set(store.destinations.list().filter((d) => d.owner === 'root').map((d) => d.id));
  const out: Usable[] = [];
  for (const p of store.binlogs.positions(account, database)) {
    if (!provider.has(p.destinationId)) continue;
    const snap = store.snapshots.list({ account, destinationId: p.destinationId }).find((s) => s.id === p.snapshotId);
    if (!snap || snap.status === 'damaged') continue;
    const chain = chainFrom(logs, p.binlogFile);
    if (chain.length > 0) out.push({ position: p, chain });
  }
  return out;
}

const lastEvent = (chain: ShippedBinlog[]): string | null => {
  for (let i = chain.length - 1; i >= 0; i--) if (chain[i]!.lastEventAt) return chain[i]!.lastEventAt;
  return null;
};
const toSecond = (iso: string): string => new Date(Math.floor(Date.parse(iso) / 1000) * 1000).toISOString().replace('.000Z', 'Z');
const ceilSecond = (iso: string): string => new Date(Math.ceil(Date.parse(iso) / 1000) * 1000).toISOString().replace('.000Z', 'Z');

export function coveredWindow(env: Pick<PointInTimeEnv, 'store'>, account: string, database: string): CoveredWindow {
  const logs = shippedLogs(env.store);
  const gaps: CoveredWindow['gaps'] = [];
  for (let i = 1; i < logs.length; i++) {
    if (logs[i]!.seq !== logs[i - 1]!.seq + 1) gaps.push({ after: logs[i - 1]!.file, before: logs[i]!.file });
  }
  const usable = usableDumps(env.store, account, database);
  const latestEnd = logs.length ? lastEvent(chainFrom(logs, logs[logs.length - 1]!.file).length ? logs : []) : null;
  // Only dumps whose chain of logs reaches the newest log: the window is one stretch of time.
  const newest = logs[logs.length - 1];
  const reaching = usable.filter((u) => newest && u.chain[u.chain.length - 1]!.file === newest.file);
  if (reaching.length === 0 || !latestEnd) return { account, database, from: null, to: null, gaps };
  const from = reaching.map((u) => u.position.dumpedAt).sort()[0]!;
  const to = lastEvent(reaching[0]!.chain) ?? latestEnd;
  return { account, database, from: ceilSecond(from), to: toSecond(to), gaps };
}

export interface RestoreAtRequest {
  account: string;
  database: string;
  moment: Date;
  /** Only these tables (the others are not touched); absent: the whole database. */
  tables?: string[];
  /** The database written: `database` itself (default) or another name of the account. */
  into?: string;
  /** Tables only: write them as `<table>_restored_<YYYYMMDDHHMMSS>` beside the current ones. */
  asNewTables?: boolean;
  onLog?: (level: 'info' | 'warn', message: string) => void;
}

export interface RestoreAtOutcome {
  database: string;
  into: string;
  moment: string;
  /** The snapshot whose dump was the starting point. */
  snapshot: string;
  /** Tables written and the name each was written as. */
  tables: { table: string; restoredAs: string }[];
  transactions: number;
  /** Logged statements of the database that were not replayed (the restore is then partial). */
  skipped: string[];
}

/** `<table>_restored_<YYYYMMDDHHMMSS>` (UTC), or an error when that is longer than MySQL allows. */
export function restoredTableName(table: string, moment: Date): string {
  const stamp = moment.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const name = `${table}_restored_${stamp}`;
  if ([...name].length > 64) throw new PointInTimeError(`table ${quoteIdent(table)}: ${quoteIdent(name)} is longer than 64 characters; restore it into place or into another database`, 'pitr-refused');
  return name;
}

function checkMoment(w: CoveredWindow, moment: Date): void {
  if (Number.isNaN(moment.getTime())) throw new PointInTimeError('the moment is not a valid date and time', 'pitr-not-covered');
  if (!w.from || !w.to) {
    throw new PointInTimeError(`database ${w.database}: no point in time is covered (it needs a dump taken while binary logging was on, and the logs shipped since)`, 'pitr-not-covered');
  }
  const t = Math.floor(moment.getTime() / 1000) * 1000;
  if (t < Date.parse(w.from) || t > Date.parse(w.to)) {
    throw new PointInTimeError(`database ${w.database}: ${moment.toISOString()} is outside the covered window (${w.from} to ${w.to})`, 'pitr-not-covered');
  }
}

/** The dump to start from and the logs to replay after it, up to `moment`. */
function plan(env: Pick<PointInTimeEnv, 'store'>, account: string, database: string, moment: Date): Usable {
  const w = coveredWindow(env, account, database);
  checkMoment(w, moment);
  const t = moment.getTime();
  const candidates = usableDumps(env.store, account, database)
    .filter((u) => Date.parse(u.position.dumpedAt) <= t + 999)
    .filter((u) => { const end = lastEvent(u.chain); return end !== null && Date.parse(end) >= Math.floor(t / 1000) * 1000; })
    .sort((a, b) => b.position.dumpedAt.localeCompare(a.position.dumpedAt));
  const best = candidates[0];
  if (!best) throw new PointInTimeError(`database ${database}: no dump before ${moment.toISOString()} is followed by the logs up to it`, 'pitr-not-covered');
  // Logs after the one holding the moment are not needed.
  const chain: ShippedBinlog[] = [];
  for (const l of best.chain) {
    if (chain.length > 0 && l.firstEventAt && Date.parse(l.firstEventAt) > t + 999) break;
    chain.push(l);
  }
  return { position: best.position, chain };
}

/** The dump a restore or preview as of `moment` starts from (refused as plan() refuses). */
export function startingDump(env: Pick<PointInTimeEnv, 'store'>, account: string, database: string, moment: Date): DumpPosition {
  return plan(env, account, database, moment).position;
}

/** A private folder of root's for the copies of the logs. */
function privateDir(): { dir: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-pitr-'));
  fs.chmodSync(dir, 0o700);
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Copies the logs from their destination and checks each against its hash. */
async function fetchLogs(env: PointInTimeEnv, chain: ShippedBinlog[], dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const l of chain) {
    const local = path.join(dir, String(l.seq));
    await env.withDestination(l.destinationId, async (dest) => {
      const hash = crypto.createHash('sha256');
      const src = dest.createReadStream(binlogPath(l.file));
      src.on('data', (c: Buffer) => hash.update(c));
      await pipeline(src, fs.createWriteStream(local, { mode: 0o600, flags: 'wx' }));
      if (hash.digest('hex') !== l.sha256) throw new Error(`binary log ${l.file} on its destination does not match its hash: the copy is damaged; nothing was restored`);
    });
    out.push(local);
  }
  return out;
}

/**
 * A scratch database name no account can own (account names cannot start with "#"), with the
 * process id, so that what a killed process left is recognised and removed (sweepLeftovers).
 */
function scratchName(): string {
  return `${SCRATCH_PREFIX}${process.pid}-${crypto.randomBytes(6).toString('hex')}`;
}
const SCRATCH_PREFIX = '#tidemark-pitr-';
const REPLAY_USER_PREFIX = 'tidemark-replay-';
const LEFTOVER = /^(?:#tidemark-pitr-|tidemark-replay-)(\d+)-[0-9a-f]{12}$/;

/** Drops the scratch databases and replay users of processes that no longer run (a restore killed halfway). */
export async function sweepLeftovers(creds: MysqlCredentials): Promise<{ databases: string[]; users: string[] }> {
  const dead = (name: string): boolean => {
    const m = LEFTOVER.exec(name);
    return m !== null && Number(m[1]) !== process.pid && !isProcessAlive(Number(m[1]));
  };
  return withConnection(creds, async (conn) => {
    const [dbs] = await conn.query<RowDataPacket[]>({ sql: 'SHOW DATABASES', rowsAsArray: true });
    const databases = dbs.map((r) => String((r as unknown[])[0])).filter((n) => n.startsWith(SCRATCH_PREFIX) && dead(n));
    for (const d of databases) await conn.query(`DROP DATABASE IF EXISTS ${quoteIdent(d)}`);
    const [users] = await conn.query<RowDataPacket[]>({ sql: 'SELECT User, Host FROM mysql.user', rowsAsArray: true });
    const gone = (users as unknown as unknown[][]).map((r) => ({ user: String(r[0]), host: String(r[1]) })).filter((u) => u.user.startsWith(REPLAY_USER_PREFIX) && dead(u.user));
    for (const u of gone) await conn.query('DROP USER IF EXISTS ?@?', [u.user, u.host]);
    return { databases, users: gone.map((u) => u.user) };
  });
}

/** Escapes a name for GRANT … ON `pattern`.*: `_` and `%` are wildcards there. */
function grantPattern(name: string): string {
  return quoteIdent(name.replace(/\\/g, '\\\\').replace(/_/g, '\\_').replace(/%/g, '\\%'));
}

/**
 * Runs `fn` with a database user made for it that may change `database` and run BINLOG
 * statements, nothing else; the user is dropped afterwards.
 */
async function withReplayUser<T>(creds: MysqlCredentials, database: string, fn: (c: MysqlCredentials) => Promise<T>): Promise<T> {
  const user = `${REPLAY_USER_PREFIX}${process.pid}-${crypto.randomBytes(6).toString('hex')}`;
  const password = crypto.randomBytes(24).toString('base64url');
  let host = 'localhost';
  await withConnection(creds, async (conn) => {
    const [rows] = await conn.query<RowDataPacket[]>({ sql: 'SELECT CURRENT_USER()', rowsAsArray: true });
    const current = String((rows[0] as unknown[] | undefined)?.[0] ?? '');
    host = current.slice(current.lastIndexOf('@') + 1) || 'localhost';
    await conn.query('CREATE USER ?@? IDENTIFIED BY ?', [user, host, password]);
    await conn.query(`GRANT ALL PRIVILEGES ON ${grantPattern(database)}.* TO ?@?`, [user, host]);
    await conn.query('GRANT BINLOG REPLAY ON *.* TO ?@?', [user, host]);
  });
  try {
    return await fn({ ...creds, user, password });
  } finally {
    await withConnection(creds, (conn) => conn.query('DROP USER IF EXISTS ?@?', [user, host])).catch(() => undefined);
  }
}

async function tablesOf(creds: MysqlCredentials, database: string): Promise<string[]> {
  return withConnection(creds, async (conn) => {
    const [rows] = await conn.query<RowDataPacket[]>({ sql: `SHOW FULL TABLES FROM ${quoteIdent(database)}`, rowsAsArray: true });
    return rows.filter((r) => String((r as unknown[])[1]) === 'BASE TABLE').map((r) => String((r as unknown[])[0]));
  });
}

/**
 * Builds database `into` as `database` was at `moment`: its dump, then its logged changes
 * (of `tables` only, when given). Returns what the replay did.
 */
async function build(env: PointInTimeEnv, creds: MysqlCredentials, req: { account: string; database: string; moment: Date; tables?: string[] }, into: string): Promise<{ snapshot: string; replay: ReplayOutcome }> {
  const p = plan(env, req.account, req.database, req.moment);
  await sweepLeftovers(creds).catch(() => undefined);
  const snap = env.store.snapshots.list({ account: req.account, destinationId: p.position.destinationId }).find((s) => s.id === p.position.snapshotId)!;
  const rel = `${layout.snapshotDir(snap.account, snap.id)}/${layout.database(req.database)}`;
  const tmp = privateDir();
  try {
    const files = await fetchLogs(env, p.chain, tmp.dir);
    const replay = {
      files, startPosition: p.position.binlogPosition, stopAt: Math.floor(req.moment.getTime() / 1000),
      source: req.database, target: into, tables: req.tables ? new Set(req.tables) : null,
    };
    // Everything that would refuse the replay is found before the target is dropped.
    await replayBinlogs({ ...replay, creds, dryRun: true });
    await loadDump(env, creds, p.position.destinationId, snap.account, snap.id, rel, req.database, into);
    const outcome = await withReplayUser(creds, into, (replayCreds) => replayBinlogs({ ...replay, creds: replayCreds }));
    return { snapshot: snap.id, replay: outcome };
  } finally {
    tmp.remove();
  }
}

/** Loads the dump of `database` from a snapshot (its hash checked first) into `into`. */
async function loadDump(env: PointInTimeEnv, creds: MysqlCredentials, destinationId: number, account: string, snapshotId: string, rel: string, database: string, into: string): Promise<void> {
  await env.withDestination(destinationId, async (dest) => {
    const { readManifest } = await import('../restore.js');
    const manifest = await readManifest(dest, account, snapshotId);
    const item = manifest.databases.find((d) => d.name === database);
    if (!item) throw new Error(`database ${database} is not in snapshot ${snapshotId}`);
    if (item.sha256) await checkStoredHash(dest, rel, item.sha256, `snapshot ${snapshotId} of ${account}: ${layout.database(database)}`);
    await restoreDatabase(creds, into, dest.createReadStream(rel).pipe(zlib.createGunzip()));
  });
}

async function checkOwned(env: PointInTimeEnv, account: string, names: string[]): Promise<void> {
  const ownership = await env.ownership();
  for (const n of names) {
    validateDatabaseName(n);
    if (!ownership.owns(account, 'database', n)) {
      throw new PointInTimeError(`database ${n} is not a database name of account ${account} (its names start with ${account}_ and are no other account's)`, 'pitr-not-yours');
    }
  }
}

/** Drops a scratch database (its tables may refer to each other by foreign keys). */
async function dropQuietly(creds: MysqlCredentials, db: string): Promise<void> {
  await withConnection(creds, async (conn) => {
    await conn.query('SET SESSION foreign_key_checks = 0');
    await conn.query(`DROP DATABASE IF EXISTS ${quoteIdent(db)}`);
  }).catch(() => undefined);
}

/**
 * Tables of `database` outside `tables` whose foreign keys refer to one of `tables`: replacing
 * those in place would leave the keys pointing at the old table (RENAME carries them along).
 */
async function referencedFromOutside(creds: MysqlCredentials, database: string, tables: string[]): Promise<string[]> {
  return withConnection(creds, async (conn) => {
    const [rows] = await conn.query<RowDataPacket[]>({
      sql: 'SELECT CONSTRAINT_SCHEMA, TABLE_NAME, REFERENCED_TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS', rowsAsArray: true,
    });
    const set = new Set(tables);
    // Compared here, not by the server (collations).
    return [...new Set((rows as unknown as unknown[][])
      .filter((r) => String(r[0]) === database && set.has(String(r[2])) && !set.has(String(r[1])))
      .map((r) => String(r[1])))];
  });
}

export async function restoreDatabaseAt(env: PointInTimeEnv, req: RestoreAtRequest): Promise<RestoreAtOutcome> {
  const into = req.into ?? req.database;
  await checkOwned(env, req.account, [req.database, into]);
  const creds = await env.mysql();
  const moment = new Date(Math.floor(req.moment.getTime() / 1000) * 1000);
  const log = req.onLog ?? (() => undefined);

  if (!req.tables) {
    const { snapshot, replay } = await build(env, creds, { ...req, moment }, into);
    for (const s of replay.skipped) log('warn', s);
    const tables = (await tablesOf(creds, into)).map((t) => ({ table: t, restoredAs: t }));
    return { database: req.database, into, moment: moment.toISOString(), snapshot, tables, transactions: replay.transactions, skipped: replay.skipped };
  }

  if (req.tables.length === 0) throw new PointInTimeError('no table given', 'pitr-no-table');
  if (!req.asNewTables) {
    const outside = await referencedFromOutside(creds, into, req.tables);
    if (outside.length) {
      throw new PointInTimeError(`table ${outside.map(quoteIdent).join(', ')} of ${into} refers to a restored table by a foreign key: restore it too, or restore as new tables`, 'pitr-refused');
    }
  }
  const scratch = scratchName();
  try {
    const { snapshot, replay } = await build(env, creds, { ...req, moment }, scratch);
    for (const s of replay.skipped) log('warn', s);
    const present = new Set(await tablesOf(creds, scratch));
    const missing = req.tables.filter((t) => !present.has(t));
    if (missing.length) throw new PointInTimeError(`table ${missing.map(quoteIdent).join(', ')} did not exist in ${req.database} at ${moment.toISOString()}`, 'pitr-no-table');
    const written: RestoreAtOutcome['tables'] = [];
    await withConnection(creds, async (conn) => {
      await conn.query(`CREATE DATABASE IF NOT EXISTS ${quoteIdent(into)}`);
      const existing = new Set((await tablesOf(creds, into)));
      for (const t of req.tables!) {
        const name = req.asNewTables ? restoredTableName(t, moment) : t;
        const from = `${quoteIdent(scratch)}.${quoteIdent(t)}`;
        const to = `${quoteIdent(into)}.${quoteIdent(name)}`;
        if (req.asNewTables && existing.has(name)) throw new PointInTimeError(`table ${quoteIdent(name)} exists already in ${into}`, 'pitr-refused');
        if (existing.has(name)) {
          // One statement: the old table goes to the scratch database as the restored one comes in.
          const old = `${quoteIdent(scratch)}.${quoteIdent(`${t}#old`)}`;
          await conn.query(`RENAME TABLE ${to} TO ${old}, ${from} TO ${to}`);
        } else {
          await conn.query(`RENAME TABLE ${from} TO ${to}`);
        }
        written.push({ table: t, restoredAs: name });
      }
    });
    return { database: req.database, into, moment: moment.toISOString(), snapshot, tables: written, transactions: replay.transactions, skipped: replay.skipped };
  } finally {
    await dropQuietly(creds, scratch);
  }
}

export interface PreviewRow { table: string; rowsNow: number | null; rowsAt: number | null }

/** Per table: its rows now and at `moment` (built in a scratch database, then dropped). */
export async function previewAt(env: PointInTimeEnv, req: { account: string; database: string; moment: Date; tables?: string[] }): Promise<{ moment: string; snapshot: string; tables: PreviewRow[]; skipped: string[] }> {
  await checkOwned(env, req.account, [req.database]);
  const creds = await env.mysql();
  const moment = new Date(Math.floor(req.moment.getTime() / 1000) * 1000);
  const scratch = scratchName();
  try {
    const { snapshot, replay } = await build(env, creds, { ...req, moment }, scratch);
    const at = await tablesOf(creds, scratch);
    const now = await tablesOf(creds, req.database).catch(() => [] as string[]);
    const names = [...new Set([...at, ...now])].filter((t) => !req.tables || req.tables.includes(t)).sort();
    const count = async (db: string, t: string): Promise<number> => withConnection(creds, async (conn) => {
      const [rows] = await conn.query<RowDataPacket[]>({ sql: `SELECT COUNT(*) FROM ${quoteIdent(db)}.${quoteIdent(t)}`, rowsAsArray: true });
      return Number((rows[0] as unknown[])[0]);
    });
    const tables: PreviewRow[] = [];
    for (const t of names) {
      tables.push({ table: t, rowsNow: now.includes(t) ? await count(req.database, t) : null, rowsAt: at.includes(t) ? await count(scratch, t) : null });
    }
    return { moment: moment.toISOString(), snapshot, tables, skipped: replay.skipped };
  } finally {
    await dropQuietly(creds, scratch);
  }
}

export { binlogSeq };
