/**
 * How Tidemark reaches the MySQL/MariaDB server: mysql2 connections for queries, and option
 * files for the command-line tools (mariadb-dump, mariadb), so that the password never shows
 * up on a command line, in the environment, in a log or in an error message.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import type { Connection, ConnectionOptions } from 'mysql2/promise';
import type { MysqlCredentials } from '../../panels/types.js';

/** Where the server is, for messages: "socket /run/mysqld/mysqld.sock" or "127.0.0.1:3306". */
export function describeServer(creds: MysqlCredentials): string {
  if (creds.socket) return `socket ${creds.socket}`;
  return `${creds.host || 'localhost'}:${creds.port ?? 3306}`;
}

/** `text` with every occurrence of the password replaced by `***`. */
export function redact(text: string, creds: MysqlCredentials): string {
  const pw = creds.password;
  if (!pw) return text;
  return text.split(pw).join('***');
}

/** A MySQL identifier in backticks (backticks inside doubled). */
export function quoteIdent(name: string): string {
  return '`' + name.replace(/`/g, '``') + '`';
}

export function connectionOptions(creds: MysqlCredentials, extra: { database?: string; multipleStatements?: boolean } = {}): ConnectionOptions {
  const base: ConnectionOptions = creds.socket
    ? { socketPath: creds.socket }
    : { host: creds.host || 'localhost', port: creds.port ?? 3306 };
  return {
    ...base,
    user: creds.user,
    ...(creds.password !== undefined && creds.password !== '' ? { password: creds.password } : {}),
    ...(extra.database !== undefined ? { database: extra.database } : {}),
    multipleStatements: extra.multipleStatements ?? false,
    connectTimeout: 15_000,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
  };
}

/** The reason of a mysql2 error, without anything secret. */
export function errorReason(err: unknown, creds: MysqlCredentials): string {
  const e = err as { message?: string; code?: string; sqlMessage?: string };
  const msg = e?.sqlMessage || e?.message || String(err);
  return redact(msg, creds);
}

/** An open connection, or an Error "cannot reach the MySQL server at …: <reason>". */
export async function openConnection(creds: MysqlCredentials, extra: { database?: string; multipleStatements?: boolean } = {}): Promise<Connection> {
  let conn: Connection;
  try {
    conn = await mysql.createConnection(connectionOptions(creds, extra));
  } catch (err) {
    throw new Error(`cannot reach the MySQL server at ${describeServer(creds)} as user '${creds.user}': ${errorReason(err, creds)}`);
  }
  // A fatal error while no query is pending is emitted as an event: without a listener it
  // would crash the process. The next query on the connection fails and reports it.
  conn.on('error', () => { /* reported by the next query */ });
  try {
    await setPlainSqlMode(conn);
  } catch (err) {
    conn.destroy();
    throw new Error(`cannot use the MySQL server at ${describeServer(creds)}: ${errorReason(err, creds)}`);
  }
  return conn;
}

/**
 * sql_mode flags that change how SQL text is read: with them the server's SHOW output, the
 * identifiers and the strings mysql2 escapes (backslashes) would mean something else.
 */
const PARSING_MODES = new Set([
  'ANSI_QUOTES', 'NO_BACKSLASH_ESCAPES', 'PIPES_AS_CONCAT', 'IGNORE_SPACE', 'ANSI', 'ORACLE', 'MSSQL', 'DB2', 'POSTGRESQL',
  'MAXDB', 'EMPTY_STRING_IS_NULL', 'SIMULTANEOUS_ASSIGNMENT',
]);

/** The session's sql_mode without PARSING_MODES: the same SQL whatever the server's default is. */
async function setPlainSqlMode(conn: Connection): Promise<void> {
  const [rows] = await conn.query({ sql: 'SELECT @@SESSION.sql_mode', rowsAsArray: true });
  const modes = String((rows as unknown[][])[0]?.[0] ?? '').split(',').filter((m) => m !== '');
  const kept = modes.filter((m) => !PARSING_MODES.has(m.toUpperCase()));
  if (kept.length === modes.length) return;
  if (!kept.every((m) => /^[A-Z0-9_]+$/i.test(m))) throw new Error(`unexpected sql_mode ${JSON.stringify(modes.join(','))}`);
  await conn.query(`SET SESSION sql_mode = '${kept.join(',')}'`);
}

/** Runs `fn` with a connection that is closed afterwards, whatever happens. */
export async function withConnection<T>(creds: MysqlCredentials, fn: (conn: Connection) => Promise<T>, extra: { database?: string; multipleStatements?: boolean } = {}): Promise<T> {
  const conn = await openConnection(creds, extra);
  try {
    return await fn(conn);
  } finally {
    await conn.end().catch(() => conn.destroy());
  }
}

/** A value for an option file: double-quoted, with the escapes the option-file parser knows. */
function optionValue(value: string): string {
  if (/[\0]/.test(value)) throw new Error('MySQL credentials must not contain NUL characters');
  const escaped = value
    .replace(/\\/g, '\\\\')
    .replace(/"/g, '\\"')
    .replace(/\n/g, '\\n')
    .replace(/\r/g, '\\r')
    .replace(/\t/g, '\\t');
  return `"${escaped}"`;
}

export interface DefaultsFile {
  /** The option to pass FIRST on the tool's command line. */
  readonly arg: string;
  readonly path: string;
  /** Deletes the file (and its private directory); safe to call more than once. */
  remove(): void;
}

/**
 * Writes the credentials to a private option file (directory 0700, file 0600) for the
 * command-line tools. It is passed with `--defaults-file=` rather than `--defaults-extra-file=`:
 * with the latter the tools still read ~/.my.cnf AFTER it (checked with mariadb 10.11), so
 * root's own /root/.my.cnf (as on cPanel servers) would override the socket, user or password
 * given here; and a global [mysqldump] section could change what the dump contains.
 */
export function writeDefaultsFile(creds: MysqlCredentials): DefaultsFile {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-my-'));
  fs.chmodSync(dir, 0o700);
  const file = path.join(dir, 'client.cnf');
  const lines = ['[client]', `user=${optionValue(creds.user)}`];
  if (creds.password !== undefined && creds.password !== '') lines.push(`password=${optionValue(creds.password)}`);
  if (creds.socket) {
    lines.push(`socket=${optionValue(creds.socket)}`, 'protocol=socket');
  } else {
    // Same meaning as for mysql2: without a socket, TCP (the tools would use the socket for "localhost").
    lines.push(`host=${optionValue(creds.host || 'localhost')}`, `port=${creds.port ?? 3306}`, 'protocol=tcp');
  }
  try {
    fs.writeFileSync(file, lines.join('\n') + '\n', { mode: 0o600, flag: 'wx' });
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  let removed = false;
  return {
    arg: `--defaults-file=${file}`,
    path: file,
    remove() {
      if (removed) return;
      removed = true;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Environment for the command-line tools: nothing that could override the option file. */
export function toolEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ['MYSQL_PWD', 'MYSQL_HOST', 'MYSQL_TCP_PORT', 'MYSQL_UNIX_PORT', 'MYSQL_HISTFILE', 'MYSQL_TEST_LOGIN_FILE', 'MARIADB_HOME']) delete env[k];
  env.LC_ALL = 'C';
  return env;
}

/* ---------- SQL text, for the grants scripts ---------- */

export interface SqlToken {
  kind: 'space' | 'comment' | 'ident' | 'string' | 'word' | 'punct';
  text: string;
}

/** Splits SQL text into tokens; joining the texts gives the input back. */
export function tokenizeSql(sql: string): SqlToken[] {
  const out: SqlToken[] = [];
  let i = 0;
  const n = sql.length;
  const quoted = (q: string): number => {
    // index just after the closing quote (doubled quotes and, for strings, backslashes escape)
    let j = i + 1;
    while (j < n) {
      const c = sql[j];
      if (q !== '`' && c === '\\') { j += 2; continue; }
      if (c === q) {
        if (sql[j + 1] === q) { j += 2; continue; }
        return j + 1;
      }
      j++;
    }
    return n;
  };
  while (i < n) {
    const c = sql[i]!;
    let end: number;
    let kind: SqlToken['kind'];
    if (/\s/.test(c)) {
      end = i + 1;
      while (end < n && /\s/.test(sql[end]!)) end++;
      kind = 'space';
    } else if (c === '#' || (c === '-' && sql[i + 1] === '-' && (i + 2 >= n || /\s/.test(sql[i + 2]!)))) {
      end = sql.indexOf('\n', i);
      end = end < 0 ? n : end;
      kind = 'comment';
    } else if (c === '/' && sql[i + 1] === '*') {
      end = sql.indexOf('*/', i + 2);
      end = end < 0 ? n : end + 2;
      kind = 'comment';
    } else if (c === '`') {
      end = quoted('`');
      kind = 'ident';
    } else if (c === "'" || c === '"') {
      end = quoted(c);
      kind = 'string';
    } else if (/[A-Za-z0-9_$\u0080-\uffff]/.test(c)) {
      end = i + 1;
      while (end < n && /[A-Za-z0-9_$\u0080-\uffff]/.test(sql[end]!)) end++;
      kind = 'word';
    } else {
      end = i + 1;
      kind = 'punct';
    }
    out.push({ kind, text: sql.slice(i, end) });
    i = end;
  }
  return out;
}

/** The statements of a script (split on top-level `;`), trimmed, comments-only ones left out. */
export function splitStatements(sql: string): SqlToken[][] {
  const statements: SqlToken[][] = [];
  let cur: SqlToken[] = [];
  const flush = (): void => {
    while (cur.length && (cur[0]!.kind === 'space' || cur[0]!.kind === 'comment')) cur.shift();
    while (cur.length && (cur[cur.length - 1]!.kind === 'space' || cur[cur.length - 1]!.kind === 'comment')) cur.pop();
    if (cur.length) statements.push(cur);
    cur = [];
  };
  for (const t of tokenizeSql(sql)) {
    if (t.kind === 'punct' && t.text === ';') flush();
    else cur.push(t);
  }
  flush();
  return statements;
}

/** The name inside a backtick-quoted identifier token. */
export function unquoteIdent(token: string): string {
  return token.startsWith('`') ? token.slice(1, token.endsWith('`') && token.length > 1 ? -1 : undefined).replace(/``/g, '`') : token;
}

/** A statement for messages: string literals (passwords, hashes) replaced by '…'. */
export function statementForMessage(tokens: SqlToken[], max = 200): string {
  const s = tokens.map((t) => (t.kind === 'string' ? "'…'" : t.kind === 'space' || t.kind === 'comment' ? ' ' : t.text)).join('').replace(/\s+/g, ' ').trim();
  return s.length > max ? s.slice(0, max) + '…' : s;
}

/**
 * Checks a database name given for a dump or a restore: non-empty, at most 64 characters,
 * no NUL, `/`, `\` or `.` (MariaDB maps names to directories), no trailing space.
 */
export function validateDatabaseName(name: string): void {
  const show = JSON.stringify(name);
  if (typeof name !== 'string' || name.length === 0) throw new Error('invalid database name: it is empty');
  if ([...name].length > 64) throw new Error(`invalid database name ${show}: longer than 64 characters`);
  if (name.includes('\0')) throw new Error(`invalid database name ${show}: it contains a NUL character`);
  const bad = ['/', '\\', '.'].find((c) => name.includes(c));
  if (bad) throw new Error(`invalid database name ${show}: it contains "${bad}"`);
  if (name.endsWith(' ')) throw new Error(`invalid database name ${show}: it ends with a space`);
}
