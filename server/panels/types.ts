import type { DatabaseOwnership } from './database-owner.js';

/** A hosting account as Tidemark sees it, whatever panel it comes from. */
export interface Account {
  username: string;
  /** Reseller that owns the account, or 'root'. */
  owner: string;
  home: string;
  uid: number;
  gid: number;
  domains: string[];
  /** MySQL/MariaDB databases of the account (names as on the server). */
  databases: string[];
  /** MySQL/MariaDB user names (without host) that belong to the account. */
  databaseUsers: string[];
  /**
   * Why the databases and database users could not be listed (the server is down or refuses):
   * both lists are then empty, and a backup of them records the reason and is partial.
   */
  databaseProblem?: string;
  suspended: boolean;
  package: string | null;
  /** Where the account holder gets mail from the panel (a valid address), or null when none is known. */
  contactEmail: string | null;
}

/** How to reach the MySQL/MariaDB server as an administrator. */
export interface MysqlCredentials {
  socket?: string;
  host?: string;
  port?: number;
  user: string;
  password?: string;
}

export interface PanelAdapter {
  readonly name: 'standalone' | 'cpanel' | 'directadmin';
  listAccounts(): Promise<Account[]>;
  /** The account, or null when the panel does not know it. */
  getAccount(username: string): Promise<Account | null>;
  mysqlCredentials(): Promise<MysqlCredentials>;
  /**
   * Which account each database name and database user name belongs to (see database-owner.ts):
   * the rule discovery uses, for restore to check a target against. Reads no MySQL server.
   */
  databaseOwnership(): Promise<DatabaseOwnership>;
}
