import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { UmzugStorage } from 'umzug';
import * as m0001 from './migrations/0001-initial.js';
import * as m0002 from './migrations/0002-owners.js';
import * as m0003 from './migrations/0003-sessions.js';
import * as m0004 from './migrations/0004-api-tokens.js';
import * as m0005 from './migrations/0005-schedules.js';
import * as m0006 from './migrations/0006-queue.js';
import * as m0007 from './migrations/0007-account-preferences.js';
import * as m0008 from './migrations/0008-account-identities.js';
import * as m0009 from './migrations/0009-task-log-audience.js';
import * as m0010 from './migrations/0010-binlogs.js';
import * as m0011 from './migrations/0011-sites-frequent-schedules.js';

export type Db = Database.Database;

const migrations = [m0001, m0002, m0003, m0004, m0005, m0006, m0007, m0008, m0009, m0010, m0011];

/** Umzug keeps the names of applied migrations in a table of the same database. */
class SqliteStorage implements UmzugStorage<Db> {
  constructor(private readonly db: Db) {
    db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)');
  }
  async logMigration({ name }: { name: string }): Promise<void> {
    this.db.prepare('INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)').run(name, new Date().toISOString());
  }
  async unlogMigration({ name }: { name: string }): Promise<void> {
    this.db.prepare('DELETE FROM schema_migrations WHERE name = ?').run(name);
  }
  async executed(): Promise<string[]> {
    return (this.db.prepare('SELECT name FROM schema_migrations ORDER BY name').all() as { name: string }[]).map((r) => r.name);
  }
}

/** Opens (creating when needed) the state store under the data directory and migrates it. */
export async function openDatabase(dataDir: string): Promise<Db> {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, 'tidemark.sqlite');
  const db = new Database(file);
  fs.chmodSync(file, 0o600);
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 10000');
  // umzug takes a quarter of a second to load: only when a migration is due.
  const applied = new Set(await new SqliteStorage(db).executed());
  if (migrations.every((m) => applied.has(m.name))) return db;
  const { Umzug } = await import('umzug');
  const umzug = new Umzug<Db>({
    migrations: migrations.map((m) => ({ name: m.name, up: m.up })),
    context: db,
    storage: new SqliteStorage(db),
    logger: undefined,
  });
  await umzug.up();
  return db;
}
