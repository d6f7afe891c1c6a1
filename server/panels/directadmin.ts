/**
 * DirectAdmin. Files (https://docs.directadmin.com/developer/config_files, and scripts that read
 * them, e.g. CloudLinux mysql-governor's dbgovernor_map.py):
 *
 * - /usr/local/directadmin/data/users/<user>/user.conf: key=value lines; username=, creator=
 *   (the reseller/admin that owns the account), domain= (default domain), package=,
 *   suspended=yes|no, usertype=user|reseller|admin (all three are accounts with a home),
 *   email= (the account's contact address).
 *   A directory without user.conf is not an account.
 * - /usr/local/directadmin/data/users/<user>/domains.list: the user's domains, one a line.
 * - /usr/local/directadmin/conf/mysql.conf: user=, passwd=, optional host=, socket=, port=;
 *   when it is missing, /usr/local/directadmin/conf/my.cnf ([client] group), which DirectAdmin
 *   documents as its default MySQL connection details.
 *
 * Home, uid and gid come from /etc/passwd (a user without a passwd entry is skipped); databases
 * and database users are the ones named `<user>_…` (DirectAdmin prefixes them so).
 */
import path from 'node:path';
import { prefixed, type Config } from '../config.js';
import {
  configuredMysql, credentialsFromKeys, databasesByPrefix, isSafeName, listDir, parseKeyValue, readMyCnfCredentials, readPasswd,
  readTextIfExists, withDefaultSocket, type PanelDeps, type PasswdEntry,
} from './files.js';
import type { Account, MysqlCredentials, PanelAdapter } from './types.js';
import { DatabaseOwnership } from './database-owner.js';
import { firstMailAddress } from '../util/mail-address.js';

const USERS_DIR = '/usr/local/directadmin/data/users';
const MYSQL_CONF = '/usr/local/directadmin/conf/mysql.conf';
const MY_CNF = '/usr/local/directadmin/conf/my.cnf';

export class DirectAdminAdapter implements PanelAdapter {
  readonly name = 'directadmin' as const;

  constructor(private readonly config: Config, private readonly deps: PanelDeps) {}

  private file(absolute: string): string {
    return prefixed(this.config, absolute);
  }

  private async load(username: string, passwd: Map<string, PasswdEntry>): Promise<Account | null> {
    const dir = path.posix.join(USERS_DIR, username);
    const confFile = this.file(`${dir}/user.conf`);
    const text = await readTextIfExists(confFile);
    if (text === null) return null;
    const pw = passwd.get(username);
    if (!pw) return null;
    if (text.trim() === '') throw new Error(`${confFile} is empty (DirectAdmin user.conf of '${username}')`);
    const conf = parseKeyValue(text);
    const declared = conf.get('username');
    if (declared && declared !== username) {
      throw new Error(`${confFile}: username=${declared} does not match the directory name '${username}'`);
    }
    const main = conf.get('domain')?.toLowerCase() || '';
    const listText = await readTextIfExists(this.file(`${dir}/domains.list`));
    const others = new Set(
      (listText ?? '').split('\n').map((l) => l.trim().toLowerCase()).filter((l) => l !== '' && !l.startsWith('#')),
    );
    others.delete(main);
    const dbs = await databasesByPrefix(this.deps, username, passwd.keys());
    return {
      username,
      owner: conf.get('creator') || 'root',
      home: pw.home,
      uid: pw.uid,
      gid: pw.gid,
      domains: [...(main ? [main] : []), ...[...others].sort()],
      ...dbs,
      suspended: conf.get('suspended')?.toLowerCase() === 'yes',
      package: conf.get('package') || null,
      contactEmail: firstMailAddress(conf.get('email')),
    };
  }

  async listAccounts(): Promise<Account[]> {
    const entries = await listDir(this.file(USERS_DIR));
    const names = entries.filter((d) => d.isDirectory() && isSafeName(d.name)).map((d) => d.name).sort();
    if (names.length === 0) return [];
    const passwd = await readPasswd(this.file('/etc/passwd'));
    const out: Account[] = [];
    // One account after the other: each database lookup may open a MySQL connection.
    for (const name of names) {
      const account = await this.load(name, passwd);
      if (account) out.push(account);
    }
    return out;
  }

  async getAccount(username: string): Promise<Account | null> {
    if (!isSafeName(username)) return null;
    return this.load(username, await readPasswd(this.file('/etc/passwd')));
  }

  /** As discovery: every user name of /etc/passwd owns the names under `<name>_`, longest first. */
  async databaseOwnership(): Promise<DatabaseOwnership> {
    return new DatabaseOwnership((await readPasswd(this.file('/etc/passwd'))).keys());
  }

  async mysqlCredentials(): Promise<MysqlCredentials> {
    if (this.config.mysql) return configuredMysql(this.config.mysql);
    const confFile = this.file(MYSQL_CONF);
    const text = await readTextIfExists(confFile);
    if (text !== null) {
      const conf = parseKeyValue(text);
      const user = conf.get('user');
      if (!user) throw new Error(`${confFile}: no user= line (DirectAdmin MySQL credentials)`);
      return withDefaultSocket(credentialsFromKeys(conf, confFile, user, ['passwd']), this.deps.socketCandidates);
    }
    const cnfFile = this.file(MY_CNF);
    const fromCnf = await readMyCnfCredentials(cnfFile);
    if (fromCnf) return withDefaultSocket(fromCnf, this.deps.socketCandidates);
    throw new Error(`no DirectAdmin MySQL credentials: neither ${confFile} nor ${cnfFile} exists`);
  }
}
