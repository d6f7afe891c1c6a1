import type Database from 'better-sqlite3';

export const name = '0007-account-preferences';

/**
 * What an account holder chose for its own account. `restore_mail` is NULL until the holder
 * chooses (the provider's `notifications.accountRestores` then decides), 1 for on, 0 for off.
 */
export async function up({ context: db }: { context: Database.Database }): Promise<void> {
  db.exec(`
    CREATE TABLE account_preferences (
      account TEXT PRIMARY KEY,
      restore_mail INTEGER CHECK (restore_mail IN (0, 1)),
      updated_at TEXT NOT NULL
    );
  `);
}
