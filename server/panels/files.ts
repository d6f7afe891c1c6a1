/**
 * Small readers shared by the panel adapters: /etc/passwd, KEY=VALUE panel files, MySQL option
 * files (my.cnf) and the MySQL credential fallbacks. Every error names the file (and the line
 * when there is one).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { prefixed, type Config } from '../config.js';
import type { Account, MysqlCredentials } from './types.js';
import { DatabaseOwnership } from './database-owner.js';

/** What the adapters need from the rest of Tidemark. */
export interface PanelDeps {
  /**
   * Databases whose name starts with `prefix`, and MySQL user names (without host) that start
   * with it. Implemented with mysql2 elsewhere; the adapters call it lazily, per account.
   */
  listDatabasesByPrefix: (prefix: string) => Promise<{ databases: string[]; users: string[] }>;
  /**
   * Where the MySQL server's Unix socket may be when the panel's files name none (first that
   * exists wins). These are real paths, not under rootPrefix. Default: DEFAULT_SOCKET_CANDIDATES.
   */
  socketCandidates?: readonly string[];
}

export const DEFAULT_SOCKET_CANDIDATES: readonly string[] = [
  '/run/mysqld/mysqld.sock',
  '/var/run/mysqld/mysqld.sock',
  '/var/lib/mysql/mysql.sock',
];

// ---------------------------------------------------------------------------------------------
// Reading files

const isMissing = (err: unknown): boolean => {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
};

/** The file's text; a clear error naming the file when it cannot be read. */
export async function readText(file: string): Promise<string> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** The file's text, or null when it does not exist. Other errors (EACCES, EISDIR…) are thrown. */
export async function readTextIfExists(file: string): Promise<string | null> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (err) {
    if (isMissing(err)) return null;
    throw new Error(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

export function exists(p: string): boolean {
  return fs.existsSync(p);
}

/** Entries of a directory ([] when it does not exist). */
export async function listDir(dir: string): Promise<fs.Dirent[]> {
  try {
    return await fsp.readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isMissing(err)) return [];
    throw new Error(`cannot list ${dir}: ${(err as Error).message}`, { cause: err });
  }
}

const lines = (text: string): string[] => text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));

/**
 * Whether `name` can safely be used as one path component of a panel file: not empty, no `/`,
 * no NUL, not `.`/`..` and not a dot file. Names from callers go through this before any path
 * is built with them.
 */
export function isSafeName(name: string): boolean {
  return name.length > 0 && name.length <= 255 && !name.includes('/') && !name.includes('\0') && !name.startsWith('.');
}

// ---------------------------------------------------------------------------------------------
// /etc/passwd

export interface PasswdEntry {
  username: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

/**
 * Parses passwd(5) text. Blank lines, `#` comments and NIS compat lines (`+…`, `-…`) are skipped;
 * any other line must have 7 `:`-separated fields with numeric uid and gid, else the error names
 * `file` and the line. A user listed twice keeps its first entry (as getpwnam does).
 */
export function parsePasswd(text: string, file: string): Map<string, PasswdEntry> {
  const out = new Map<string, PasswdEntry>();
  lines(text).forEach((line, i) => {
    if (line.trim() === '' || line.startsWith('#') || line.startsWith('+') || line.startsWith('-')) return;
    const f = line.split(':');
    if (f.length !== 7) throw new Error(`${file}:${i + 1}: malformed passwd entry (expected 7 ':'-separated fields, found ${f.length})`);
    const [username, , uidText, gidText, , home, shell] = f as [string, string, string, string, string, string, string];
    if (username === '') throw new Error(`${file}:${i + 1}: malformed passwd entry (empty user name)`);
    if (!/^\d+$/.test(uidText)) throw new Error(`${file}:${i + 1}: malformed passwd entry for '${username}' (uid '${uidText}' is not a number)`);
    if (!/^\d+$/.test(gidText)) throw new Error(`${file}:${i + 1}: malformed passwd entry for '${username}' (gid '${gidText}' is not a number)`);
    if (!out.has(username)) out.set(username, { username, uid: Number(uidText), gid: Number(gidText), home, shell });
  });
  return out;
}

/** parsePasswd of a file; a missing file is an error (every panel has one). */
export async function readPasswd(file: string): Promise<Map<string, PasswdEntry>> {
  return parsePasswd(await readText(file), file);
}

// ---------------------------------------------------------------------------------------------
// KEY=VALUE panel files (cPanel /var/cpanel/users/<user>, DirectAdmin user.conf, mysql.conf)

/**
 * Parses `KEY=VALUE` lines (split at the first `sep`; key and value trimmed; the last occurrence
 * of a key wins). Blank lines and lines starting with `#` are skipped, and so are lines without
 * the separator: cPanel's own reader (Cpanel::Config::LoadCpUserFile) ignores them too.
 */
export function parseKeyValue(text: string, sep: string = '='): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of lines(text)) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const at = t.indexOf(sep);
    if (at <= 0) continue;
    out.set(t.slice(0, at).trim(), t.slice(at + sep.length).trim());
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// MySQL option files (my.cnf)

/**
 * What MySQL's option-file reader (mysys/my_default.c, remove_end_comment) does: cut the line
 * at the first `#` that is not inside '…' or "…" (a backslash inside quotes escapes a quote).
 */
function removeEndComment(line: string): string {
  let quote = '';
  let escape = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if ((c === "'" || c === '"') && !escape) {
      if (!quote) quote = c;
      else if (quote === c) quote = '';
    }
    if (!quote && c === '#') return line.slice(0, i);
    escape = quote !== '' && c === '\\' && !escape;
  }
  return line;
}

/** The escapes MySQL's option-file reader knows; an unknown one keeps its backslash. */
function unescapeOptionValue(value: string): string {
  const map: Record<string, string> = { n: '\n', t: '\t', r: '\r', b: '\b', s: ' ', '"': '"', "'": "'", '\\': '\\' };
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '\\' && i < value.length - 1) {
      const next = value[++i]!;
      out += map[next] ?? `\\${next}`;
    } else {
      out += c;
    }
  }
  return out;
}

/** Option names compare with `-` and `_` as the same character, case-insensitively. */
const optionName = (name: string): string => name.trim().toLowerCase().replace(/_/g, '-');

/**
 * Parses a MySQL option file into groups (lower-cased) of options. Follows mysys/my_default.c:
 * `#`/`;` comment lines, trailing `#` comments outside quotes, values trimmed, one pair of
 * surrounding '…' or "…" removed, escapes \n \t \r \b \s \" \' \\. `!include` and `!includedir`
 * are not followed. An option before any [group] or a bad group header is an error naming the file.
 */
export function parseOptionFile(text: string, file: string): Map<string, Map<string, string>> {
  const groups = new Map<string, Map<string, string>>();
  let current: Map<string, string> | null = null;
  lines(text).forEach((line, i) => {
    const t = line.trim();
    if (t === '' || t.startsWith('#') || t.startsWith(';') || t.startsWith('!')) return;
    if (t.startsWith('[')) {
      const end = t.indexOf(']');
      const name = end > 0 ? t.slice(1, end).trim().toLowerCase() : '';
      if (!name) throw new Error(`${file}:${i + 1}: malformed option group header '${t}'`);
      current = groups.get(name) ?? new Map<string, string>();
      groups.set(name, current);
      return;
    }
    if (!current) throw new Error(`${file}:${i + 1}: option found before any [group]`);
    const body = removeEndComment(t).trim();
    if (body === '') return;
    const eq = body.indexOf('=');
    if (eq < 0) {
      current.set(optionName(body), '');
      return;
    }
    let value = body.slice(eq + 1).trim();
    if (value.length > 1 && (value[0] === '"' || value[0] === "'") && value[value.length - 1] === value[0]) value = value.slice(1, -1);
    current.set(optionName(body.slice(0, eq)), unescapeOptionValue(value));
  });
  return groups;
}

/** A TCP port from a panel file; anything but 1–65535 is an error naming the file. */
export function parsePort(text: string, file: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= 65535)) throw new Error(`${file}: port '${text}' is not a number between 1 and 65535`);
  return n;
}

/** Credentials from parsed key=value settings (my.cnf's [client], DirectAdmin's mysql.conf). */
export function credentialsFromKeys(keys: Map<string, string>, file: string, user: string, passwordKeys: readonly string[]): MysqlCredentials {
  const creds: MysqlCredentials = { user };
  const password = passwordKeys.map((k) => keys.get(k)).find((v) => v !== undefined);
  if (password !== undefined) creds.password = password;
  const socket = keys.get('socket');
  if (socket) creds.socket = socket;
  const host = keys.get('host');
  if (host) creds.host = host;
  const port = keys.get('port');
  if (port) creds.port = parsePort(port, file);
  return creds;
}

/**
 * MySQL credentials from the [client] group of an option file: user (default root), password
 * (or the old `pass`), socket, host, port. Null when the file does not exist.
 */
export async function readMyCnfCredentials(file: string): Promise<MysqlCredentials | null> {
  const text = await readTextIfExists(file);
  if (text === null) return null;
  const client = parseOptionFile(text, file).get('client') ?? new Map<string, string>();
  const creds = credentialsFromKeys(client, file, client.get('user') || 'root', ['password', 'pass']);
  // protocol=tcp: the client uses TCP even for localhost; say so with an address, so that
  // withDefaultSocket leaves these credentials alone.
  if (client.get('protocol')?.toLowerCase() === 'tcp' && !creds.socket && (!creds.host || creds.host === 'localhost')) creds.host = '127.0.0.1';
  return creds;
}

/** The first of `candidates` that exists (real paths: the MySQL server is not under rootPrefix). */
export function findSocket(candidates: readonly string[] = DEFAULT_SOCKET_CANDIDATES): string | undefined {
  return candidates.find((p) => exists(p));
}

/**
 * A MySQL client given no socket and no host (or host "localhost") talks to the server's Unix
 * socket; mysql2 would use TCP to localhost:3306 instead. Put the socket that exists in such
 * credentials so that both behave the same.
 */
export function withDefaultSocket(creds: MysqlCredentials, candidates?: readonly string[]): MysqlCredentials {
  if (creds.socket || (creds.host && creds.host !== 'localhost')) return creds;
  const socket = findSocket(candidates);
  return socket ? { ...creds, socket } : creds;
}

// ---------------------------------------------------------------------------------------------
// Paths and databases

/**
 * Whether `child` lies strictly below one of `roots`, comparing resolved paths by segments:
 * /home2x/bob is not under /home2, and /home itself is not under /home.
 */
export function isUnderAny(child: string, roots: readonly string[]): boolean {
  const c = path.resolve(child);
  return roots.some((root) => {
    const rel = path.relative(path.resolve(root), c);
    return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
  });
}

export const sortedUnique = (names: Iterable<string>): string[] => [...new Set(names)].sort();

/**
 * The databases and MySQL users of `username` by the `<username>_` naming convention, through
 * deps.listDatabasesByPrefix, owned by the rule of DatabaseOwnership: a name that also matches a
 * longer user name (`bob_x_db` when `bob_x` exists next to `bob`) belongs to that other user and
 * is left out. A failure leaves both
 * lists empty and names the account and the cause in `databaseProblem`.
 */
export async function databasesByPrefix(deps: PanelDeps, username: string, allUsernames: Iterable<string>): Promise<Pick<Account, 'databases' | 'databaseUsers' | 'databaseProblem'>> {
  const prefix = `${username}_`;
  const ownership = new DatabaseOwnership(allUsernames);
  let found: { databases: string[]; users: string[] };
  try {
    found = await deps.listDatabasesByPrefix(prefix);
  } catch (err) {
    // The account's files do not depend on the database server: its backup goes on without
    // the databases and says why (see backup.ts).
    return { databases: [], databaseUsers: [], databaseProblem: `cannot list the databases of account '${username}': ${(err as Error).message}` };
  }
  return {
    databases: sortedUnique(found.databases.filter((n) => ownership.owns(username, 'database', n))),
    databaseUsers: sortedUnique(found.users.filter((n) => ownership.owns(username, 'user', n))),
  };
}

// ---------------------------------------------------------------------------------------------
// MySQL credentials shared by standalone and cPanel

/** config.mysql as MysqlCredentials (only the fields that are set). */
export function configuredMysql(mysql: NonNullable<Config['mysql']>): MysqlCredentials {
  const creds: MysqlCredentials = { user: mysql.user };
  if (mysql.password !== undefined) creds.password = mysql.password;
  if (mysql.socket !== undefined) creds.socket = mysql.socket;
  if (mysql.host !== undefined) creds.host = mysql.host;
  if (mysql.port !== undefined) creds.port = mysql.port;
  return creds;
}

/**
 * config.mysql when set; else the [client] group of /root/.my.cnf (under rootPrefix) when that
 * file exists; else root over the first server socket that exists.
 */
export async function rootMyCnfCredentials(config: Pick<Config, 'rootPrefix' | 'mysql'>, deps: PanelDeps): Promise<MysqlCredentials> {
  if (config.mysql) return configuredMysql(config.mysql);
  const fromFile = await readMyCnfCredentials(prefixed(config, '/root/.my.cnf'));
  return withDefaultSocket(fromFile ?? { user: 'root' }, deps.socketCandidates);
}
