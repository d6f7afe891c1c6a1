import type Database from 'better-sqlite3';

export const name = '0004-api-tokens';

/**
 * Tokens of the JSON API. As for sessions, only a SHA-256 hash of each token is kept: a
 * copy of the state store authenticates nobody. Times are milliseconds since the epoch.
 */
export async function up({ context: db }: { context: Database.Database }): Promise<void> {
  db.exec(`
    CREATE TABLE api_tokens (
      id INTEGER PRIMARY KEY,
      name TEXT NOT NULL UNIQUE,
      token_hash TEXT NOT NULL UNIQUE,
      actor TEXT NOT NULL,
      role TEXT NOT NULL CHECK (role IN ('admin', 'reseller', 'user')),
      created_at INTEGER NOT NULL,
      expires_at INTEGER,
      last_used_at INTEGER,
      revoked_at INTEGER
    );
  `);
}
