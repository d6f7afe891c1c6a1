import type Database from 'better-sqlite3';

export const name = '0003-sessions';

/**
 * Web sign-in. Only SHA-256 hashes of login tokens and session ids are kept: a copy of
 * the state store opens no session. Times are milliseconds since the epoch.
 */
export async function up({ context: db }: { context: Database.Database }): Promise<void> {
  db.exec(`
    CREATE TABLE login_tokens (
      token_hash TEXT PRIMARY KEY,
      actor TEXT NOT NULL,
      role TEXT NOT NULL CHECK (role IN ('admin', 'reseller', 'user')),
      created_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL
    );
    CREATE TABLE sessions (
      id_hash TEXT PRIMARY KEY,
      actor TEXT NOT NULL,
      role TEXT NOT NULL CHECK (role IN ('admin', 'reseller', 'user')),
      created_at INTEGER NOT NULL,
      last_seen_at INTEGER NOT NULL,
      idle_ms INTEGER NOT NULL,
      expires_at INTEGER NOT NULL
    );
  `);
}
