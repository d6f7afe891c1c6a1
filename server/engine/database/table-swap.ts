/**
 * Restores SOME tables of a database from a dump of the whole database: the dump is loaded into
 * a scratch database, then the chosen tables replace the live ones in ONE `RENAME TABLE`
 * statement (atomic on MariaDB and MySQL), so the database never shows half of the old tables
 * and half of the new, and every other table of it is left as it is.
 */
import crypto from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import type { MysqlCredentials } from '../../panels/types.js';
import { errorReason, quoteIdent, validateDatabaseName, withConnection } from './connection.js';
import { restoreDatabase } from './restore.js';

const text = (v: unknown): string => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v));

/**
 * Scratch names start with `#`: no account's name does, so no account's `<name>_…` prefix nor a
 * grant pattern of an account (which restore only accepts under `<account>_`) reaches them.
 */
export const scratchName = (what: string): string => `#tidemark-${what}-${crypto.randomBytes(6).toString('hex')}`;

/** The base tables and the views of a database, as the server names them. */
async function tablesOf(conn: Connection, db: string): Promise<{ tables: string[]; views: string[] }> {
  const [rows] = await conn.query<RowDataPacket[]>({ sql: `SHOW FULL TABLES FROM ${quoteIdent(db)}`, rowsAsArray: true });
  const tables: string[] = [];
  const views: string[] = [];
  for (const r of rows as unknown as unknown[][]) (text(r[1]).toUpperCase() === 'VIEW' ? views : tables).push(text(r[0]));
  return { tables, views };
}

async function databaseExists(conn: Connection, db: string): Promise<boolean> {
  const [rows] = await conn.query<RowDataPacket[]>({ sql: 'SHOW DATABASES', rowsAsArray: true });
  return (rows as unknown as unknown[][]).some((r) => text(r[0]) === db);
}

/** Triggers of `tables` in `db` are dropped (a table with triggers cannot change database): their names, for the log. */
async function dropTriggers(conn: Connection, db: string, tables: readonly string[]): Promise<string[]> {
  const [rows] = await conn.query<RowDataPacket[]>({ sql: `SHOW TRIGGERS FROM ${quoteIdent(db)}`, rowsAsArray: true });
  const wanted = new Set(tables);
  const dropped: string[] = [];
  for (const r of rows as unknown as unknown[][]) {
    const [name, , table] = [text(r[0]), text(r[1]), text(r[2])];
    if (!wanted.has(table)) continue;
    await conn.query(`DROP TRIGGER ${quoteIdent(db)}.${quoteIdent(name)}`);
    dropped.push(`${name} (on ${table})`);
  }
  return dropped;
}

export interface LoadedDump {
  readonly database: string;
  /** Drops the scratch database; safe to call more than once. */
  drop(): Promise<void>;
}

/** Loads a dump into a new scratch database (see scratchName). */
export async function loadIntoScratch(creds: MysqlCredentials, sql: Readable): Promise<LoadedDump> {
  const name = scratchName('load');
  let dropped = false;
  const drop = async (): Promise<void> => {
    if (dropped) return;
    dropped = true;
    await withConnection(creds, (c) => c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)}`));
  };
  try {
    await restoreDatabase(creds, name, sql);
  } catch (err) {
    await drop().catch(() => undefined);
    throw err;
  }
  return { database: name, drop };
}

export interface SwapResult {
  /** Tables now as the dump had them. */
  restored: string[];
  /** Tables of the choice that the dump did not have: removed, as they were not there then. */
  removed: string[];
  warnings: string[];
}

/**
 * Makes the tables `choose` picks in `target` what they are in `loaded`: those of the dump
 * replace the live ones, live ones the dump did not have are removed; nothing else of `target`
 * changes. `choose` is given table names and returns the ones it wants (of each side alike).
 */
export async function swapTables(creds: MysqlCredentials, loaded: LoadedDump, target: string, choose: (tables: string[]) => string[]): Promise<SwapResult> {
  validateDatabaseName(target);
  const warnings: string[] = [];
  const trash = scratchName('old');
  return withConnection(creds, async (conn) => {
    const from = await tablesOf(conn, loaded.database);
    const restored = choose(from.tables);
    for (const v of choose(from.views)) warnings.push(`view ${quoteIdent(v)} of the snapshot is not restored (only tables are)`);
    if (!(await databaseExists(conn, target))) {
      await conn.query(`USE ${quoteIdent(loaded.database)}`);
      const [cs] = await conn.query<RowDataPacket[]>({ sql: 'SELECT @@character_set_database, @@collation_database', rowsAsArray: true });
      const [charset, collation] = (cs as unknown as unknown[][])[0]!.map(text);
      if (!/^\w+$/.test(charset!) || !/^\w+$/.test(collation!)) throw new Error('unexpected character set of the loaded dump');
      await conn.query(`CREATE DATABASE ${quoteIdent(target)} CHARACTER SET ${charset} COLLATE ${collation}`);
    }
    const now = await tablesOf(conn, target);
    const current = choose(now.tables);
    for (const v of choose(now.views)) if (restored.includes(v)) throw new Error(`${quoteIdent(target)}.${quoteIdent(v)} is a view now and a table in the snapshot: nothing was changed`);
    for (const t of await dropTriggers(conn, loaded.database, restored)) warnings.push(`trigger ${t} of the snapshot is not restored`);
    for (const t of await dropTriggers(conn, target, current)) warnings.push(`trigger ${t} was removed with its table`);
    const renames: string[] = [];
    const q = (db: string, t: string): string => `${quoteIdent(db)}.${quoteIdent(t)}`;
    for (const t of current) renames.push(`${q(target, t)} TO ${q(trash, t)}`);
    for (const t of restored) renames.push(`${q(loaded.database, t)} TO ${q(target, t)}`);
    if (renames.length === 0) return { restored, removed: [], warnings };
    await conn.query(`CREATE DATABASE ${quoteIdent(trash)}`);
    try {
      await conn.query(`RENAME TABLE ${renames.join(', ')}`);
    } catch (err) {
      throw new Error(`replacing the tables of ${quoteIdent(target)} failed (nothing was changed): ${errorReason(err, creds)}`);
    } finally {
      await conn.query(`DROP DATABASE IF EXISTS ${quoteIdent(trash)}`).catch(() => undefined);
    }
    const kept = new Set(restored);
    return { restored, removed: current.filter((t) => !kept.has(t)), warnings };
  });
}
