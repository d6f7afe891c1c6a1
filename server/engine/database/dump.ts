/** Dumps of one database (plain SQL, from mariadb-dump/mysqldump) and of database users with their grants. */
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { PassThrough, type Readable } from 'node:stream';
import type { RowDataPacket } from 'mysql2/promise';
import type { MysqlCredentials } from '../../panels/types.js';
import { FULL_SPEED, politely, type Politeness } from '../../util/politeness.js';
import {
  quoteIdent, redact, toolEnv, tokenizeSql, validateDatabaseName, withConnection, writeDefaultsFile, type DefaultsFile,
} from './connection.js';
import { userHosts } from './discover.js';
import { DumpCoordinatesReader, type BinlogCoordinates } from './dump-coordinates.js';

/** A running dump; `binlogCoordinates()` once it has ended (null: binary logging is off). */
export type DatabaseDump = Readable & { binlogCoordinates(): BinlogCoordinates | null };

const FALLBACK_DIRS = ['/usr/local/bin', '/usr/bin', '/bin', '/usr/local/sbin', '/usr/sbin', '/sbin'];

/** Full path of the first of `names` found in PATH (then in the usual bin directories), or null. */
export function findExecutable(names: string[]): string | null {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter((d) => d && path.isAbsolute(d)), ...FALLBACK_DIRS];
  for (const name of names) {
    for (const dir of dirs) {
      const p = path.join(dir, name);
      try {
        fs.accessSync(p, fs.constants.X_OK);
        if (fs.statSync(p).isFile()) return p;
      } catch { /* not here */ }
    }
  }
  return null;
}

/** mariadb-dump, else mysqldump. */
export function findDumpTool(): string {
  const p = findExecutable(['mariadb-dump', 'mysqldump']);
  if (!p) throw new Error('neither mariadb-dump nor mysqldump was found in PATH (install mariadb-client or mysql-client)');
  return p;
}

/** mariadb, else mysql. */
export function findClientTool(): string {
  const p = findExecutable(['mariadb', 'mysql']);
  if (!p) throw new Error('neither mariadb nor mysql (the command-line client) was found in PATH (install mariadb-client or mysql-client)');
  return p;
}

/**
 * Options of the dump tool after `--defaults-file=…`: one consistent snapshot of InnoDB tables
 * (no locks), rows streamed, all stored programs, binary columns in hex, text in utf8mb4, and
 * no date (identical databases give identical dumps). The dump has no CREATE DATABASE / USE.
 */
export const DUMP_OPTIONS: readonly string[] = [
  '--single-transaction',
  '--quick',
  '--routines',
  '--triggers',
  '--events',
  '--hex-blob',
  '--default-character-set=utf8mb4',
  '--skip-dump-date',
  '--max-allowed-packet=1073741824',
];

/** First line of every dump Tidemark writes: the database's default character set and collation. */
export const DUMP_HEADER_PREFIX = '-- Tidemark database defaults: ';
const HEADER_RE = /^-- Tidemark database defaults: CHARACTER SET ([A-Za-z0-9_]+) COLLATE ([A-Za-z0-9_]+)\s*$/;

export function parseDumpHeader(line: string): { charset: string; collation: string } | null {
  const m = HEADER_RE.exec(line);
  return m ? { charset: m[1]!, collation: m[2]! } : null;
}

const STDERR_KEEP = 8192;

/** Collects the end of a child's stderr. */
export function collectStderr(child: ChildProcess): () => string {
  let buf = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (s: string) => {
    buf += s;
    if (buf.length > 2 * STDERR_KEEP) buf = buf.slice(-STDERR_KEEP);
  });
  return () => (buf.length > STDERR_KEEP ? '…' + buf.slice(-STDERR_KEEP) : buf).trim();
}

/**
 * The plain SQL dump of database `db` (no CREATE DATABASE / USE lines: it restores under any name).
 * The stream is destroyed with an Error carrying the tool's stderr when the dump fails. When the
 * server writes a binary log, the dump also records (as a comment, `--master-data=2`) the log
 * position it is consistent with, returned by `binlogCoordinates()` after the end.
 */
export function dumpDatabase(creds: MysqlCredentials, db: string, politeness?: Politeness, tables?: readonly string[]): DatabaseDump {
  const coordinates = new DumpCoordinatesReader();
  const out = Object.assign(new PassThrough(), { binlogCoordinates: () => coordinates.coordinates() });
  let child: ChildProcess | undefined;
  let defaults: DefaultsFile | undefined;
  const running = (): boolean => !!child && child.exitCode === null && child.signalCode === null;
  // The consumer gave up (or failed): stop the tool.
  out.on('close', () => { if (running()) child!.kill('SIGTERM'); });

  const start = async (): Promise<void> => {
    validateDatabaseName(db);
    const tool = findDumpTool();
    const defaultsOf = await withConnection(creds, async (conn) => {
      const [names] = await conn.query<RowDataPacket[]>({ sql: 'SHOW DATABASES', rowsAsArray: true });
      if (!names.some((r) => String((r as unknown[])[0]) === db)) return null;
      // Compared here, not with `WHERE SCHEMA_NAME = ?`: no text comparison by the server (collations).
      const [rows] = await conn.query<RowDataPacket[]>(
        'SELECT SCHEMA_NAME AS name, DEFAULT_CHARACTER_SET_NAME AS cs, DEFAULT_COLLATION_NAME AS coll FROM information_schema.SCHEMATA');
      const row = rows.find((r) => String(r.name) === db);
      const [logBin] = await conn.query<RowDataPacket[]>({ sql: 'SELECT @@GLOBAL.log_bin', rowsAsArray: true });
      const binlog = Number((logBin[0] as unknown[] | undefined)?.[0] ?? 0) === 1;
      return { charset: String(row?.cs ?? 'utf8mb4'), collation: String(row?.coll ?? ''), binlog };
    });
    if (!defaultsOf) throw new Error(`cannot dump database ${quoteIdent(db)}: it does not exist on the MySQL server`);
    if (out.destroyed) return;

    defaults = writeDefaultsFile(creds);
    const d = defaults;
    const name = path.basename(tool);
    // With --single-transaction, MariaDB takes the position from the same consistent snapshot.
    const binlogOptions = defaultsOf.binlog && !(tables && tables.length > 0) ? ['--master-data=2'] : [];
    // Some tables only (a site's): their triggers come along, the database's routines and events do not.
    const only = tables && tables.length > 0 ? ['--skip-routines', '--skip-events'] : [];
    const run = politely(politeness ?? FULL_SPEED, tool, [d.arg, ...DUMP_OPTIONS, ...binlogOptions, ...only, '--', db, ...(tables ?? [])]);
    const proc = spawn(run.command, run.args, { stdio: ['ignore', 'pipe', 'pipe'], env: toolEnv() });
    child = proc;
    const stderr = collectStderr(proc);
    proc.on('exit', () => d.remove());
    proc.on('error', (err) => {
      d.remove();
      out.destroy(new Error(`cannot run ${tool}: ${err.message}`));
    });
    proc.on('close', (code, signal) => {
      d.remove();
      if (out.destroyed) return;
      if (code === 0) { coordinates.end(); return; }
      const how = code !== null ? `exit code ${code}` : `signal ${signal}`;
      const msg = redact(stderr(), creds);
      out.destroy(new Error(`${name} failed for database ${quoteIdent(db)} (${how})${msg ? `: ${msg}` : ''}`));
    });
    if (/^[A-Za-z0-9_]+$/.test(defaultsOf.charset) && /^[A-Za-z0-9_]+$/.test(defaultsOf.collation)) {
      out.write(`${DUMP_HEADER_PREFIX}CHARACTER SET ${defaultsOf.charset} COLLATE ${defaultsOf.collation}\n`);
    }
    coordinates.on('error', (err) => out.destroy(err));
    coordinates.on('end', () => { if (!out.destroyed) out.end(); });
    proc.stdout!.pipe(coordinates, { end: false });
    coordinates.pipe(out, { end: false });
  };
  start().catch((err: unknown) => {
    defaults?.remove();
    out.destroy(err instanceof Error ? new Error(redact(err.message, creds)) : new Error(redact(String(err), creds)));
  });
  return out;
}

/**
 * A GRANT line of SHOW GRANTS without its IDENTIFIED … clause (MariaDB puts the password hash
 * there): running it must not change the password of a user that already exists.
 */
export function stripIdentified(statement: string): string {
  const tokens = tokenizeSql(statement);
  const firstWord = tokens.find((t) => t.kind === 'word');
  if (!firstWord || firstWord.text.toUpperCase() !== 'GRANT') return statement;
  const start = tokens.findIndex((t) => t.kind === 'word' && t.text.toUpperCase() === 'IDENTIFIED');
  if (start < 0) return statement;
  let end = start + 1;
  while (end < tokens.length) {
    const t = tokens[end]!;
    if (t.kind === 'word' && (t.text.toUpperCase() === 'REQUIRE' || t.text.toUpperCase() === 'WITH')) break;
    end++;
  }
  let from = start;
  while (from > 0 && tokens[from - 1]!.kind === 'space') from--;
  const kept = [...tokens.slice(0, from), ...(end < tokens.length ? [{ kind: 'space' as const, text: ' ' }] : []), ...tokens.slice(end)];
  return kept.map((t) => t.text).join('').trim();
}

/**
 * An SQL script that recreates the users `users` (every host of each) with their password hash
 * and their privileges: `CREATE USER IF NOT EXISTS …;` then the GRANT statements. A user that
 * already exists keeps its password; grants are added to the ones it has. '' when no users.
 */
export async function dumpGrants(creds: MysqlCredentials, users: string[]): Promise<string> {
  if (users.length === 0) return '';
  return withConnection(creds, async (conn) => {
    // MySQL 8: binary password hashes (caching_sha2_password) as hex. Unknown to MariaDB: ignored.
    await conn.query('SET SESSION print_identified_with_as_hex = ON').catch(() => undefined);
    const accounts = await userHosts(conn, users);
    if (accounts.length === 0) return '';
    const lines: string[] = ['-- Tidemark: database users and their privileges (existing users keep their password)'];
    for (const { user, host } of accounts) {
      const [created] = await conn.query<RowDataPacket[]>({ sql: 'SHOW CREATE USER ?@?', rowsAsArray: true }, [user, host]);
      const [granted] = await conn.query<RowDataPacket[]>({ sql: 'SHOW GRANTS FOR ?@?', rowsAsArray: true }, [user, host]);
      lines.push(`-- ${quoteIdent(user)}@${quoteIdent(host)}`);
      for (const r of created) {
        const stmt = String((r as unknown[])[0]).trim();
        lines.push(stmt.replace(/^CREATE\s+USER\s+(?!IF\s+NOT\s+EXISTS\b)/i, 'CREATE USER IF NOT EXISTS ') + ';');
      }
      for (const r of granted) lines.push(stripIdentified(String((r as unknown[])[0]).trim()) + ';');
    }
    return lines.join('\n') + '\n';
  });
}
