/** Which databases and database users belong to an account (cPanel/DirectAdmin name them `<prefix>…`). */
import type { Connection, RowDataPacket } from 'mysql2/promise';
import type { MysqlCredentials } from '../../panels/types.js';
import { withConnection } from './connection.js';

const text = (v: unknown): string => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v));

/**
 * Every comparison of text with text is done here, in JavaScript, never by the server: a server
 * whose collation-server differs from the connection's (Debian's utf8mb4_general_ci against
 * mysql2's utf8mb4_unicode_ci) refuses `is_role <> 'Y'` with "Illegal mix of collations", and
 * LIKE, `=` and IN compare without regard to case or trailing spaces.
 */

/** Whether mysql.user has an is_role column (MariaDB: roles live in mysql.user). */
async function hasRoleColumn(conn: Connection): Promise<boolean> {
  const [rows] = await conn.query<RowDataPacket[]>({ sql: 'SHOW COLUMNS FROM mysql.user', rowsAsArray: true });
  return rows.some((r) => text((r as unknown[])[0]).toLowerCase() === 'is_role');
}

/** Every (User, Host) of mysql.user that is not a role. */
async function userRows(conn: Connection): Promise<{ user: string; host: string }[]> {
  const roles = await hasRoleColumn(conn);
  const [rows] = await conn.query<RowDataPacket[]>({ sql: `SELECT User, Host${roles ? ', is_role' : ''} FROM mysql.user`, rowsAsArray: true });
  return (rows as unknown as unknown[][])
    .filter((r) => !roles || text(r[2]).toUpperCase() !== 'Y')
    .map((r) => ({ user: text(r[0]), host: text(r[1]) }));
}

/**
 * Databases whose name starts with `prefix`, and user names (without host) that start with it,
 * without regard to case (the owner rule, DatabaseOwnership, decides without it too).
 * The comparison is done here, exactly: `_` in a prefix is a wildcard for LIKE.
 */
export async function listDatabasesByPrefix(creds: MysqlCredentials, prefix: string): Promise<{ databases: string[]; users: string[] }> {
  if (!prefix) throw new Error('listDatabasesByPrefix: the prefix must not be empty');
  const lower = prefix.toLowerCase();
  const under = (n: string): boolean => n.toLowerCase().startsWith(lower);
  return withConnection(creds, async (conn) => {
    const [dbRows] = await conn.query<RowDataPacket[]>({ sql: 'SHOW DATABASES', rowsAsArray: true });
    const databases = dbRows.map((r) => text((r as unknown[])[0])).filter(under).sort();
    const users = [...new Set((await userRows(conn)).map((r) => r.user).filter(under))].sort();
    return { databases, users };
  });
}

/** Every `user@host` account of the given user names (roles excluded), sorted. */
export async function listUserHosts(creds: MysqlCredentials, users: string[]): Promise<{ user: string; host: string }[]> {
  if (users.length === 0) return [];
  return withConnection(creds, (conn) => userHosts(conn, users));
}

/** As listUserHosts, on an open connection. */
export async function userHosts(conn: Connection, users: string[]): Promise<{ user: string; host: string }[]> {
  if (users.length === 0) return [];
  const wanted = new Set(users);
  const seen = new Set<string>();
  const out: { user: string; host: string }[] = [];
  for (const { user, host } of await userRows(conn)) {
    if (!wanted.has(user)) continue;
    const key = `${user}\0${host}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ user, host });
  }
  out.sort((a, b) => (a.user === b.user ? (a.host < b.host ? -1 : a.host > b.host ? 1 : 0) : a.user < b.user ? -1 : 1));
  return out;
}
