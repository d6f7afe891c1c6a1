/**
 * cPanel & WHM. Formats as cPanel's own code reads them (cPanel 11.50+ Perl modules):
 *
 * - /var/cpanel/users/<user> (Cpanel::Config::LoadCpUserFile): KEY=VALUE lines, `#` comments,
 *   lines without `=` ignored. DNS= is the main domain, DNS1=, DNS2=… the other domains (XDNSn are
 *   removed domains and are not used); cPanel lower-cases domains. OWNER=, PLAN=, SUSPENDED=1,
 *   CONTACTEMAIL= (the account's contact address; the first one when it lists several).
 *   The user name is the file name (cPanel sets USER from it, whatever the file says).
 * - /etc/trueuserowners (Cpanel::Config::LoadUserOwners): `user: owner` lines.
 * - /var/cpanel/databases/<user>.json, the "DB map" (Cpanel::DB::Map, Cpanel::DB::Map::Reader):
 *   { "MYSQL": { "owner": …, "server": …, "dbs": { "<db>": … }, "dbusers": { "<dbuser>":
 *   { "dbs": { "<db>": … }, … } }, "noprefix": { … } }, "PGSQL": { … }, "version": 1 }.
 *   Database names are the keys of MYSQL.dbs, database users the keys of MYSQL.dbusers, less the
 *   temporary `cpses_…` session users (Cpanel::Session::Constants::TEMP_USER_PREFIX). The
 *   pre-11.50 YAML map (<user>.yaml) is not read. The account's own MySQL user (named like the
 *   account, managed by cPanel) is not in the map and is not listed.
 * - /root/.my.cnf: root's MySQL password, [client] group.
 *
 * Home, uid and gid come from /etc/passwd; a user without a passwd entry is skipped.
 */
import path from 'node:path';
import { prefixed, type Config } from '../config.js';
import { isSafeName, listDir, parseKeyValue, readPasswd, readTextIfExists, rootMyCnfCredentials, sortedUnique, type PanelDeps, type PasswdEntry } from './files.js';
import type { Account, MysqlCredentials, PanelAdapter } from './types.js';
import { DatabaseOwnership } from './database-owner.js';
import { firstMailAddress } from '../util/mail-address.js';

const USERS_DIR = '/var/cpanel/users';
const DATABASES_DIR = '/var/cpanel/databases';
const TRUE_USER_OWNERS = '/etc/trueuserowners';
/** Cpanel::Session::Constants::TEMP_USER_PREFIX: temporary MySQL users of cPanel sessions. */
const TEMP_USER_PREFIX = 'cpses_';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export class CpanelAdapter implements PanelAdapter {
  readonly name = 'cpanel' as const;

  constructor(private readonly config: Config, private readonly deps: PanelDeps) {}

  private file(absolute: string): string {
    return prefixed(this.config, absolute);
  }

  /** user → owner from /etc/trueuserowners (empty when the file does not exist). */
  private async trueUserOwners(): Promise<Map<string, string>> {
    const text = await readTextIfExists(this.file(TRUE_USER_OWNERS));
    return text === null ? new Map() : parseKeyValue(text, ':');
  }

  /** The account's databases and database users from its DB map; none when there is no map. */
  private async databaseMap(username: string): Promise<Pick<Account, 'databases' | 'databaseUsers'>> {
    const file = this.file(path.posix.join(DATABASES_DIR, `${username}.json`));
    const text = await readTextIfExists(file);
    if (text === null || text.trim() === '') return { databases: [], databaseUsers: [] };
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw new Error(`${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
    if (!isObject(data)) throw new Error(`${file}: expected a JSON object (cPanel database map)`);
    const mysql = data.MYSQL;
    if (mysql === undefined || mysql === null) return { databases: [], databaseUsers: [] };
    if (!isObject(mysql)) throw new Error(`${file}: "MYSQL" must be an object`);
    const dbs = mysql.dbs ?? {};
    const dbusers = mysql.dbusers ?? {};
    if (!isObject(dbs)) throw new Error(`${file}: "MYSQL.dbs" must be an object of database names`);
    if (!isObject(dbusers)) throw new Error(`${file}: "MYSQL.dbusers" must be an object of database user names`);
    return {
      databases: sortedUnique(Object.keys(dbs).filter((n) => n !== '')),
      databaseUsers: sortedUnique(Object.keys(dbusers).filter((n) => n !== '' && !n.startsWith(TEMP_USER_PREFIX))),
    };
  }

  private async load(username: string, passwd: Map<string, PasswdEntry>, owners: Map<string, string>): Promise<Account | null> {
    const file = this.file(path.posix.join(USERS_DIR, username));
    const text = await readTextIfExists(file);
    if (text === null) return null;
    const pw = passwd.get(username);
    if (!pw) return null;
    if (text.trim() === '') throw new Error(`${file} is empty (cPanel user file of '${username}')`);
    const kv = parseKeyValue(text);
    const main = kv.get('DNS')?.toLowerCase() || '';
    const others = new Set<string>();
    for (const [key, value] of kv) if (/^DNS\d+$/.test(key) && value) others.add(value.toLowerCase());
    others.delete(main);
    const domains = [...(main ? [main] : []), ...[...others].sort()];
    const dbs = await this.databaseMap(username);
    return {
      username,
      owner: owners.get(username) || kv.get('OWNER') || 'root',
      home: pw.home,
      uid: pw.uid,
      gid: pw.gid,
      domains,
      ...dbs,
      suspended: kv.get('SUSPENDED') === '1',
      package: kv.get('PLAN') || null,
      contactEmail: firstMailAddress(kv.get('CONTACTEMAIL')),
    };
  }

  async listAccounts(): Promise<Account[]> {
    const entries = await listDir(this.file(USERS_DIR));
    const names = entries.filter((d) => d.isFile() && d.name !== 'system' && isSafeName(d.name)).map((d) => d.name).sort();
    if (names.length === 0) return [];
    const [passwd, owners] = await Promise.all([readPasswd(this.file('/etc/passwd')), this.trueUserOwners()]);
    const out: Account[] = [];
    for (const name of names) {
      const account = await this.load(name, passwd, owners);
      if (account) out.push(account);
    }
    return out;
  }

  async getAccount(username: string): Promise<Account | null> {
    if (!isSafeName(username) || username === 'system') return null;
    const [passwd, owners] = await Promise.all([readPasswd(this.file('/etc/passwd')), this.trueUserOwners()]);
    return this.load(username, passwd, owners);
  }

  /**
   * The names every account's DB map lists are that account's; other names go by the longest
   * `<account>_` prefix among cPanel's accounts (cPanel with database prefixing).
   */
  async databaseOwnership(): Promise<DatabaseOwnership> {
    const entries = await listDir(this.file(USERS_DIR));
    const accounts = entries.filter((d) => d.isFile() && d.name !== 'system' && isSafeName(d.name)).map((d) => d.name).sort();
    const databases: [string, string][] = [];
    const users: [string, string][] = [];
    for (const account of accounts) {
      const map = await this.databaseMap(account);
      for (const n of map.databases) databases.push([n, account]);
      for (const n of map.databaseUsers) users.push([n, account]);
    }
    return new DatabaseOwnership(accounts, { database: databases, user: users });
  }

  mysqlCredentials(): Promise<MysqlCredentials> {
    return rootMyCnfCredentials(this.config, this.deps);
  }
}
