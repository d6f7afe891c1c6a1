/** Which databases and database users belong to an account (cPanel/DirectAdmin name them `<prefix>…`). */
import type { Connection, RowDataPacket } from 'mysql2/promise';
import type { MysqlCredentials } from '../../panels/types.js';
import { withConnection } from './connection.js';

const text = (v: unknown): string => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v));

/** Whether mysql.user has an is_role column (MariaDB: roles live in mysql.user). */
async function hasRoleColumn(conn: Connection): Promise<boolean> {
  const [rows] = await conn.query<RowDataPacket[]>("SHOW COLUMNS FROM mysql.user LIKE 'is\\_role'");
  return rows.length > 0;
}

/**
 * Databases whose name starts with `prefix`, and user names (without host) that start with it.
 * The comparison is done here, exactly: `_` in a prefix is a wildcard for LIKE.
 */
export async function listDatabasesByPrefix(creds: MysqlCredentials, prefix: string): Promise<{ databases: string[]; users: string[] }> {
  if (!prefix) throw new Error('listDatabasesByPrefix: the prefix must not be empty');
  return withConnection(creds, async (conn) => {
    const [dbRows] = await conn.query<RowDataPacket[]>({ sql: 'SHOW DATABASES', rowsAsArray: true });
    const databases = dbRows.map((r) => text((r as unknown[])[0])).filter((n) => n.startsWith(prefix)).sort();
    const notRole = (await hasRoleColumn(conn)) ? " WHERE is_role <> 'Y'" : '';
    const [userRows] = await conn.query<RowDataPacket[]>({ sql: `SELECT DISTINCT User FROM mysql.user${notRole}`, rowsAsArray: true });
    const users = [...new Set(userRows.map((r) => text((r as unknown[])[0])).filter((n) => n.startsWith(prefix)))].sort();
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
  const notRole = (await hasRoleColumn(conn)) ? " AND is_role <> 'Y'" : '';
  const [rows] = await conn.query<RowDataPacket[]>({ sql: `SELECT User, Host FROM mysql.user WHERE User IN (?)${notRole}`, rowsAsArray: true }, [users]);
  const wanted = new Set(users);
  const seen = new Set<string>();
  const out: { user: string; host: string }[] = [];
  for (const r of rows as unknown as unknown[][]) {
    const user = text(r[0]);
    const host = text(r[1]);
    // IN compares with trailing-space padding: keep exact matches only.
    if (!wanted.has(user)) continue;
    const key = `${user}\0${host}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ user, host });
  }
  out.sort((a, b) => (a.user === b.user ? (a.host < b.host ? -1 : a.host > b.host ? 1 : 0) : a.user < b.user ? -1 : 1));
  return out;
}
