import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { UmzugStorage } from 'umzug';
import { sqliteOptions } from './sqlite-binding.js';

export type Db = Database.Database;

/**
 * The migrations in order, by name (each module is migrations/NAME.js and exports that name):
 * a store that is up to date, which is every open but the first after an upgrade, loads none.
 */
export const MIGRATIONS = [
  '0001-initial', '0002-owners', '0003-sessions', '0004-api-tokens', '0005-schedules', '0006-queue',
  '0007-account-preferences', '0008-account-identities', '0009-task-log-audience', '0010-binlogs', '0011-sites-frequent-schedules',
] as const;

interface MigrationModule { name: string; up: (params: { context: Db }) => Promise<void> }

/** A migration's module, checked to be the one its name says. */
export async function loadMigration(name: string): Promise<MigrationModule> {
  const m = await import(`./migrations/${name}.js`) as MigrationModule;
  if (m.name !== name) throw new Error(`migration module ${name}.js names itself ${m.name}`);
  return m;
}

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
  const db = new Database(file, sqliteOptions());
  fs.chmodSync(file, 0o600);
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 10000');
  // umzug takes a quarter of a second to load: only when a migration is due.
  const applied = new Set(await new SqliteStorage(db).executed());
  if (MIGRATIONS.every((name) => applied.has(name))) return db;
  const migrations = await Promise.all(MIGRATIONS.map(loadMigration));
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
