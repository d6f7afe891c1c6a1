/** Restores of one database from its plain SQL dump, and of database users with their grants. */
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { RowDataPacket } from 'mysql2/promise';
import type { MysqlCredentials } from '../../panels/types.js';
import type { DatabaseOwnership } from '../../panels/database-owner.js';
import {
  errorReason, quoteIdent, redact, splitStatements, statementForMessage, toolEnv, unquoteIdent,
  validateDatabaseName, withConnection, writeDefaultsFile, type SqlToken,
} from './connection.js';
import { collectStderr, findClientTool, parseDumpHeader } from './dump.js';

export { validateDatabaseName } from './connection.js';

/** Options of the client after `--defaults-file=…`; then `--` and the database name. */
export const CLIENT_OPTIONS: readonly string[] = [
  '--default-character-set=utf8mb4',
  '--binary-mode',
  '--batch',
  '--max-allowed-packet=1073741824',
];

/** Longest start of a line looked at (and the header line's limit). */
const HEAD = 1024;
/** Longest line that is rewritten; longer ones pass unchanged. */
const MAX_REWRITE = 64 * 1024;
/**
 * Statements at the start of a line that name a database. mariadb-dump (without --databases)
 * writes only `ALTER DATABASE \`db\` CHARACTER SET … COLLATE … ;` around stored programs created
 * under another database collation; the others come from dumps made with --databases.
 */
const NAMES_DB = /^((?:\/\*![0-9]{5} )?(?:(?:ALTER|CREATE|DROP)\s+(?:DATABASE|SCHEMA)\s+(?:\/\*![0-9]{5}\s+IF\s+(?:NOT\s+)?EXISTS\s*\*\/\s*|IF\s+(?:NOT\s+)?EXISTS\s+)?|USE\s+))(`(?:[^`]|``)+`|[A-Za-z0-9_$]+)/i;
const MAYBE_NAMES_DB = /^(\/\*!|ALTER|CREATE|DROP|USE)/i;
/**
 * Inside a `DELIMITER ;;` block (stored program bodies) only this exact line of mariadb-dump
 * (around events) is rewritten, so that the text of a body is never changed.
 */
const BLOCK_ALTER = /^(ALTER DATABASE )(`(?:[^`]|``)+`)( CHARACTER SET [A-Za-z0-9_]+ COLLATE [A-Za-z0-9_]+ (\S+)\r?\n?)$/;

/**
 * Passes a dump through, reading the Tidemark header on the first line and pointing every
 * statement that names a database (see NAMES_DB) at `target`, so that restoring under another
 * name never touches the original database. Works on bytes: the dump need not be valid UTF-8.
 */
class DumpRetargeter extends Transform {
  readonly header: Promise<{ charset: string; collation: string } | null>;
  private resolveHeader!: (h: { charset: string; collation: string } | null) => void;
  private rejectHeader!: (e: Error) => void;
  private headerDone = false;
  private first = true;
  /** Bytes of the current line kept back while deciding (mode 'head') or rewriting (mode 'line'). */
  private held: Buffer[] = [];
  private heldLen = 0;
  private mode: 'head' | 'line' | 'pass' = 'head';
  /** The client's statement delimiter at this point of the dump (DELIMITER lines). */
  private delimiter = ';';
  private readonly target: string;

  constructor(target: string) {
    super();
    // As latin1 text, so that the rewrite is byte-exact.
    this.target = Buffer.from(quoteIdent(target), 'utf8').toString('latin1');
    this.header = new Promise((resolve, reject) => { this.resolveHeader = resolve; this.rejectHeader = reject; });
    this.header.catch(() => undefined);
  }

  private settleHeader(h: { charset: string; collation: string } | null): void {
    if (this.headerDone) return;
    this.headerDone = true;
    this.resolveHeader(h);
  }

  /** A complete line (with its newline if any) or a line start that is enough to decide. */
  private emitLine(line: Buffer): void {
    let text = line.toString('latin1');
    if (this.first) {
      this.first = false;
      this.settleHeader(parseDumpHeader(Buffer.from(text, 'latin1').toString('utf8').replace(/\r?\n$/, '')));
    }
    const d = /^DELIMITER\s+(\S+)\s*$/i.exec(text);
    if (d) {
      this.delimiter = d[1]!;
    } else if (this.delimiter === ';') {
      if (MAYBE_NAMES_DB.test(text)) text = text.replace(NAMES_DB, (_m, lead: string) => lead + this.target);
    } else {
      const m = BLOCK_ALTER.exec(text);
      if (m && m[4] === this.delimiter) text = m[1] + this.target + m[3];
    }
    this.push(Buffer.from(text, 'latin1'));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.mode === 'pass') {
        const nl = chunk.indexOf(10, i);
        if (nl < 0) { this.push(chunk.subarray(i)); break; }
        this.push(chunk.subarray(i, nl + 1));
        i = nl + 1;
        this.mode = 'head';
        continue;
      }
      const nl = chunk.indexOf(10, i);
      const end = nl < 0 ? chunk.length : nl + 1;
      this.held.push(chunk.subarray(i, end));
      this.heldLen += end - i;
      i = end;
      const line = (): Buffer => { const b = Buffer.concat(this.held); this.held = []; this.heldLen = 0; return b; };
      if (nl >= 0) {
        // The whole line is here.
        this.emitLine(line());
        this.mode = 'head';
      } else if (this.mode === 'head' && this.heldLen >= HEAD) {
        const start = Buffer.concat(this.held);
        const startText = start.toString('latin1');
        const candidate = this.delimiter === ';'
          ? MAYBE_NAMES_DB.test(startText) && NAMES_DB.test(startText)
          : startText.startsWith('ALTER DATABASE `');
        if (!this.first && candidate) {
          this.held = [start];
          this.mode = 'line';
        } else {
          // Not a statement to rewrite (or not the header): pass it through.
          if (this.first) { this.first = false; this.settleHeader(null); }
          this.push(line());
          this.mode = 'pass';
        }
      } else if (this.mode === 'line' && this.heldLen > MAX_REWRITE) {
        this.push(line());
        this.mode = 'pass';
      }
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.heldLen > 0) this.emitLine(Buffer.concat(this.held));
    this.held = [];
    this.settleHeader(null);
    done();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (!this.headerDone) {
      this.headerDone = true;
      this.rejectHeader(err ?? new Error('the dump stream was closed before it began'));
    }
    cb(err);
  }
}

/**
 * The error lines of the client's stderr. MariaDB 10.11's client also prints the failing
 * statement (--print-query-on-error), which may be a long INSERT full of the account's data.
 */
function clientErrors(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => /^(ERROR|Warning|mariadb:|mysql:)/.test(l.trim()));
  return (lines.length ? lines.join('\n') : stderr).trim().slice(0, 4000);
}

function waitClose(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }> {
  return new Promise((resolve) => {
    let error: Error | undefined;
    child.on('error', (e) => { error = e; });
    child.on('close', (code, signal) => resolve({ code, signal, ...(error ? { error } : {}) }));
  });
}

/**
 * Drops database `targetDb`, creates it again (with the default character set and collation
 * the dump's header names, else utf8mb4) and runs the dump `sql` in it with the client.
 * The dump may come from a database of another name.
 */
export async function restoreDatabase(creds: MysqlCredentials, targetDb: string, sql: Readable): Promise<void> {
  const failEarly = (err: unknown): never => {
    sql.destroy();
    throw err;
  };
  try {
    validateDatabaseName(targetDb);
  } catch (err) {
    failEarly(err);
  }
  const q = quoteIdent(targetDb);
  let client: string;
  try { client = findClientTool(); } catch (err) { return failEarly(err); }

  const rw = new DumpRetargeter(targetDb);
  let child: ChildProcess | undefined;
  let inputError: Error | undefined;
  rw.on('error', (e) => {
    inputError ??= e;
    // The input broke: stop the client before it sees the end of its input and commits a cut dump.
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  sql.on('error', (e) => rw.destroy(e));
  sql.pipe(rw);

  let header: { charset: string; collation: string } | null;
  try {
    header = await rw.header;
  } catch (err) {
    throw new Error(`cannot restore database ${q}: reading the dump failed: ${(err as Error).message}`);
  }

  try {
    await withConnection(creds, async (conn) => {
      const charset = header ? ` CHARACTER SET ${header.charset} COLLATE ${header.collation}` : ' CHARACTER SET utf8mb4';
      try {
        await conn.query(`DROP DATABASE IF EXISTS ${q}`);
        await conn.query(`CREATE DATABASE ${q}${charset}`);
      } catch (err) {
        throw new Error(`cannot restore database ${q}: ${errorReason(err, creds)}`);
      }
    });
  } catch (err) {
    rw.destroy();
    sql.destroy();
    throw err;
  }

  const defaults = writeDefaultsFile(creds);
  const proc = spawn(client, [defaults.arg, ...CLIENT_OPTIONS, '--', targetDb], { stdio: ['pipe', 'ignore', 'pipe'], env: toolEnv() });
  child = proc;
  const stderr = collectStderr(proc);
  proc.on('exit', () => defaults.remove());
  const closed = waitClose(proc);
  // EPIPE when the client stops early (an SQL error): its stderr says why.
  const piped = pipeline(rw, proc.stdin!).then(() => undefined, (e: Error) => e);
  const [exit, pipeError] = await Promise.all([closed, piped]);
  defaults.remove();

  const name = path.basename(client);
  if (exit.error) throw new Error(`cannot run ${client}: ${exit.error.message}`);
  if (inputError) {
    throw new Error(`restoring database ${q} failed: reading the dump failed: ${redact(inputError.message, creds)} (the database is incomplete)`);
  }
  if (exit.code !== 0) {
    const how = exit.code !== null ? `exit code ${exit.code}` : `signal ${exit.signal}`;
    const msg = redact(clientErrors(stderr()), creds);
    throw new Error(`restoring database ${q} failed (${name}, ${how})${msg ? `: ${msg}` : ''}`);
  }
  if (pipeError) throw new Error(`restoring database ${q} failed: ${redact(pipeError.message, creds)}`);
}

/** Unescapes a database pattern of SHOW GRANTS (`\_`, `\%`, `\\`). */
function unescapeDbPattern(p: string): string {
  return p.replace(/\\([_%\\])/g, '$1');
}
function escapeDbPattern(name: string): string {
  return name.replace(/\\/g, '\\\\').replace(/_/g, '\\_').replace(/%/g, '\\%');
}

/**
 * GRANT … ON `old`.… with `old` renamed. SHOW GRANTS shows the database as the pattern stored in
 * mysql.db: `acct\_shop` (escaped, as cPanel writes it) or `acct_shop` (where `_` is a wildcard).
 * A pattern that means exactly a renamed database is rewritten in the same style; wildcard
 * patterns such as `acct\_%` are left alone (they may match the new name already).
 */
export function renameGrantTokens(tokens: SqlToken[], renames: Map<string, string>): SqlToken[] {
  const words = tokens.filter((t) => t.kind !== 'space' && t.kind !== 'comment');
  if (words[0]?.kind !== 'word' || words[0].text.toUpperCase() !== 'GRANT' || renames.size === 0) return tokens;
  const out = tokens.map((t) => ({ ...t }));
  const sig = out.map((t, i) => ({ t, i })).filter(({ t }) => t.kind !== 'space' && t.kind !== 'comment');
  for (let k = 0; k < sig.length; k++) {
    if (sig[k]!.t.kind !== 'word' || sig[k]!.t.text.toUpperCase() !== 'ON') continue;
    let j = k + 1;
    const kw = sig[j]?.t.text.toUpperCase();
    if (sig[j]?.t.kind === 'word' && (kw === 'PROCEDURE' || kw === 'FUNCTION' || kw === 'PACKAGE' || kw === 'TABLE')) {
      j++;
      if (kw === 'PACKAGE' && sig[j]?.t.kind === 'word' && sig[j]!.t.text.toUpperCase() === 'BODY') j++;
    }
    const db = sig[j];
    const dot = sig[j + 1];
    if (!db || !dot || dot.t.kind !== 'punct' || dot.t.text !== '.') continue;
    if (db.t.kind !== 'ident' && db.t.kind !== 'word') continue;
    const pattern = unquoteIdent(db.t.text);
    const plain = unescapeDbPattern(pattern);
    const renamed = renames.get(plain);
    if (renamed === undefined) continue;
    // `_`/`%` left unescaped in a pattern that is not the exact name: a wildcard grant.
    const escaped = pattern !== plain;
    if (escaped && escapeDbPattern(plain) !== pattern) continue;
    out[db.i] = { kind: 'ident', text: quoteIdent(escaped ? escapeDbPattern(renamed) : renamed) };
  }
  return out;
}

/** Whose grants a script may restore: only the account's users, on the account's databases. */
export interface GrantsGuard {
  account: string;
  ownership: DatabaseOwnership;
}

/** A name in a statement: `ident`, 'string' or a bare word. */
function nameOf(t: SqlToken | undefined): string | null {
  if (!t) return null;
  if (t.kind === 'ident') return unquoteIdent(t.text);
  if (t.kind === 'word') return t.text;
  if (t.kind === 'string') {
    const q = t.text[0]!;
    return t.text.slice(1, t.text.endsWith(q) && t.text.length > 1 ? -1 : undefined)
      .replace(new RegExp(`${q}${q}`, 'g'), q).replace(/\\(.)/g, '$1');
  }
  return null;
}

const upper = (t: SqlToken | undefined): string => (t && t.kind === 'word' ? t.text.toUpperCase() : '');

/**
 * Why a statement of a grants script must not run for `guard.account`, or null when it may:
 * only `CREATE USER` of one of the account's users, and `GRANT … ON` one of the account's
 * databases (or USAGE on *.*) to one of its users. Role grants, PROXY, global privileges,
 * database patterns that can reach another account's databases, and anything else are refused.
 * `existing`: the databases on the server (a wildcard pattern must match none of another's).
 */
export function refusedGrant(tokens: SqlToken[], guard: GrantsGuard, existing: readonly string[]): string | null {
  const sig = tokens.filter((t) => t.kind !== 'space' && t.kind !== 'comment');
  const { account, ownership } = guard;
  const user = (t: SqlToken | undefined): string | null => {
    const n = nameOf(t);
    if (n === null) return 'no user name';
    return ownership.owns(account, 'user', n) ? null : `user ${quoteIdent(n)} is not a database user of account ${account}`;
  };
  if (sig.some((t) => t.kind === 'punct' && t.text === ',')) {
    // Several users or privileges with columns: SHOW GRANTS writes `GRANT SELECT, INSERT ON`.
    const on = sig.findIndex((t) => upper(t) === 'ON');
    if (upper(sig[0]) !== 'GRANT' || on < 0 || sig.slice(on).some((t) => t.kind === 'punct' && t.text === ',')) return 'more than one user';
  }
  if (upper(sig[0]) === 'CREATE' && upper(sig[1]) === 'USER') {
    const at = upper(sig[2]) === 'IF' ? 5 : 2;
    if (sig.some((t) => upper(t) === 'ROLE')) return 'roles are not restored';
    return user(sig[at]);
  }
  if (upper(sig[0]) !== 'GRANT') return 'not a CREATE USER or GRANT statement';
  const on = sig.findIndex((t) => upper(t) === 'ON');
  const to = sig.findIndex((t, i) => i > on && upper(t) === 'TO');
  if (on < 0 || to < 0) return 'roles are not restored';
  const privileges = sig.slice(1, on).map((t) => t.text.toUpperCase());
  if (privileges.includes('PROXY')) return 'PROXY is not restored';
  const grantee = user(sig[to + 1]);
  if (grantee) return grantee;
  let j = on + 1;
  const kind = upper(sig[j]);
  if (['TABLE', 'PROCEDURE', 'FUNCTION', 'PACKAGE'].includes(kind)) j += upper(sig[j + 1]) === 'BODY' ? 2 : 1;
  const target = sig.slice(j, to);
  if (target.length === 3 && target[0]!.text === '*' && target[1]!.text === '.' && target[2]!.text === '*') {
    return privileges.join(' ') === 'USAGE' ? null : 'global privileges are not restored';
  }
  if (target.length !== 3 || target[1]!.text !== '.') return 'not a grant on a database';
  const db = nameOf(target[0]);
  if (db === null) return 'not a grant on a database';
  // Database-level grants are patterns (`_`, `%`); table and routine grants name the database exactly.
  const ours = target[2]!.text === '*' && kind === ''
    ? ownership.patternOwnedBy(account, db, existing)
    : ownership.owns(account, 'database', db);
  return ours ? null : `database ${quoteIdent(db)} is not a database of account ${account}`;
}

/**
 * Runs a grants script of dumpGrants. With `renames` (old → new database name), GRANT lines on a
 * renamed database point at the new one. With `guard`, statements that would give or create
 * anything outside the account's own users and databases are not run: they are returned, each
 * with its reason. Every other statement is tried; failures are reported together at the end.
 * `guard` null: the script is the server administrator's own, run as it is.
 */
export async function restoreGrants(creds: MysqlCredentials, sql: string, renames: Map<string, string> | undefined, guard: GrantsGuard | null): Promise<{ skipped: string[] }> {
  const map = renames ?? new Map<string, string>();
  for (const [from, to] of map) { validateDatabaseName(from); validateDatabaseName(to); }
  const statements = splitStatements(sql).map((s) => renameGrantTokens(s, map));
  const skipped: string[] = [];
  if (statements.length === 0) return { skipped };
  const failures: string[] = [];
  await withConnection(creds, async (conn) => {
    let existing: string[] = [];
    if (guard) {
      const [rows] = await conn.query<RowDataPacket[]>({ sql: 'SHOW DATABASES', rowsAsArray: true });
      existing = rows.map((r) => String((r as unknown[])[0]));
    }
    for (const tokens of statements) {
      const refused = guard ? refusedGrant(tokens, guard, existing) : null;
      if (refused) {
        skipped.push(`${statementForMessage(tokens)}: not restored (${refused})`);
        continue;
      }
      try {
        await conn.query(tokens.map((t) => t.text).join(''));
      } catch (err) {
        failures.push(`${statementForMessage(tokens)}: ${errorReason(err, creds)}`);
      }
    }
  });
  if (failures.length) {
    throw new Error(`restoring database users: ${failures.length} of ${statements.length} statements failed: ${failures.join('; ')}`);
  }
  return { skipped };
}
