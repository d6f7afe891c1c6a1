/**
 * No control panel: the accounts are the system users of /etc/passwd with a uid of at least
 * config.minUid (not nobody, 65534) whose home lies under one of config.homeRoots. Their
 * databases and MySQL users are the ones named `<username>_…`.
 */
import { prefixed, type Config } from '../config.js';
import { databasesByPrefix, isSafeName, isUnderAny, readPasswd, rootMyCnfCredentials, type PanelDeps, type PasswdEntry } from './files.js';
import type { Account, MysqlCredentials, PanelAdapter } from './types.js';
import { DatabaseOwnership } from './database-owner.js';

const NOBODY_UID = 65534;

export class StandaloneAdapter implements PanelAdapter {
  readonly name = 'standalone' as const;

  constructor(private readonly config: Config, private readonly deps: PanelDeps) {}

  private get passwdFile(): string {
    return prefixed(this.config, '/etc/passwd');
  }

  private isAccount(e: PasswdEntry): boolean {
    return e.uid >= this.config.minUid && e.uid !== NOBODY_UID && isUnderAny(e.home, this.config.homeRoots);
  }

  private async toAccount(e: PasswdEntry, allUsernames: Iterable<string>): Promise<Account> {
    const dbs = await databasesByPrefix(this.deps, e.username, allUsernames);
    return {
      username: e.username,
      owner: 'root',
      home: e.home,
      uid: e.uid,
      gid: e.gid,
      domains: [],
      ...dbs,
      // A '!' in /etc/shadow is no reliable sign of suspension (many users simply have no password).
      suspended: false,
      package: null,
      // A system user has no contact address Tidemark could trust.
      contactEmail: null,
    };
  }

  async listAccounts(): Promise<Account[]> {
    const passwd = await readPasswd(this.passwdFile);
    const entries = [...passwd.values()].filter((e) => this.isAccount(e)).sort((a, b) => (a.username < b.username ? -1 : a.username > b.username ? 1 : 0));
    const out: Account[] = [];
    // One account after the other: each lookup may open a MySQL connection.
    for (const e of entries) out.push(await this.toAccount(e, passwd.keys()));
    return out;
  }

  async getAccount(username: string): Promise<Account | null> {
    if (!isSafeName(username)) return null;
    const passwd = await readPasswd(this.passwdFile);
    const e = passwd.get(username);
    if (!e || !this.isAccount(e)) return null;
    return this.toAccount(e, passwd.keys());
  }

  /** As discovery: every user name of /etc/passwd owns the names under `<name>_`, longest first. */
  async databaseOwnership(): Promise<DatabaseOwnership> {
    return new DatabaseOwnership((await readPasswd(this.passwdFile)).keys());
  }

  mysqlCredentials(): Promise<MysqlCredentials> {
    return rootMyCnfCredentials(this.config, this.deps);
  }
}
