import type Database from 'better-sqlite3';

export const name = '0008-account-identities';

/**
 * Everything an account owns belongs to the account's identity at the time, not to its name
 * alone: a later account that reuses the name is someone else. `accounts` holds one row per
 * identity: its name (which follows renames), what the panel told about it (uid, creation
 * time, reseller) and when it was removed. At most one identity of a name is current.
 *
 * Existing rows become the identities of the accounts as they are now: one identity per
 * name found in the store, with no uid or creation time yet (first_seen_at NULL marks them
 * as older than identities); the first time the panel is asked about the name, its uid and
 * creation time are recorded on that identity.
 */
export async function up({ context: db }: { context: Database.Database }): Promise<void> {
  db.transaction(() => {
    db.exec(`
      CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        uid INTEGER,
        panel_created_at TEXT,             -- the panel's creation time (cPanel STARTDATE, DirectAdmin date_created), ISO
        owner TEXT,                        -- the reseller (or 'root') that owned it, as last seen
        first_seen_at TEXT,                -- NULL: recorded by this migration, older than identities
        removed_at TEXT,
        removed_reason TEXT
      );
      CREATE UNIQUE INDEX accounts_current ON accounts(name) WHERE removed_at IS NULL;
      ALTER TABLE snapshots ADD COLUMN account_id INTEGER REFERENCES accounts(id);
      ALTER TABLE destinations ADD COLUMN owner_account_id INTEGER REFERENCES accounts(id);
      ALTER TABLE jobs ADD COLUMN owner_account_id INTEGER REFERENCES accounts(id);
      ALTER TABLE api_tokens ADD COLUMN account_id INTEGER REFERENCES accounts(id);
      ALTER TABLE sessions ADD COLUMN account_id INTEGER REFERENCES accounts(id);
      ALTER TABLE login_tokens ADD COLUMN account_id INTEGER REFERENCES accounts(id);
      ALTER TABLE account_preferences ADD COLUMN account_id INTEGER REFERENCES accounts(id);
      CREATE INDEX snapshots_by_account_id ON snapshots(account_id);
    `);
    const names = db.prepare(`
      SELECT account AS n FROM snapshots
      UNION SELECT owner FROM destinations WHERE owner <> 'root'
      UNION SELECT owner FROM jobs WHERE owner <> 'root'
      UNION SELECT actor FROM api_tokens WHERE role <> 'admin'
      UNION SELECT actor FROM sessions WHERE role <> 'admin'
      UNION SELECT actor FROM login_tokens WHERE role <> 'admin'
      UNION SELECT account FROM account_preferences
      UNION SELECT account FROM tasks WHERE account IS NOT NULL`).all() as { n: string }[];
    const insert = db.prepare('INSERT INTO accounts (name) VALUES (?)');
    for (const { n } of names) insert.run(n);
    const current = `(SELECT id FROM accounts WHERE accounts.name = %s AND removed_at IS NULL)`;
    db.exec(`
      UPDATE snapshots SET account_id = ${current.replace('%s', 'snapshots.account')};
      UPDATE destinations SET owner_account_id = ${current.replace('%s', 'destinations.owner')} WHERE owner <> 'root';
      UPDATE jobs SET owner_account_id = ${current.replace('%s', 'jobs.owner')} WHERE owner <> 'root';
      UPDATE api_tokens SET account_id = ${current.replace('%s', 'api_tokens.actor')} WHERE role <> 'admin';
      UPDATE sessions SET account_id = ${current.replace('%s', 'sessions.actor')} WHERE role <> 'admin';
      UPDATE login_tokens SET account_id = ${current.replace('%s', 'login_tokens.actor')} WHERE role <> 'admin';
      UPDATE account_preferences SET account_id = ${current.replace('%s', 'account_preferences.account')};
      UPDATE tasks SET params = json_set(params, '$.accountIdentity', ${current.replace('%s', 'tasks.account')}) WHERE account IS NOT NULL;
    `);
  })();
}
