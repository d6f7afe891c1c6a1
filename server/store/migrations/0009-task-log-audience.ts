import type Database from 'better-sqlite3';

export const name = '0009-task-log-audience';

/**
 * Who may read a task log line: `all` (whoever may see the task) or `provider` (only the
 * server's administrator: what the provider's hook scripts printed, which may hold anything).
 */
export async function up({ context: db }: { context: Database.Database }): Promise<void> {
  db.exec(`ALTER TABLE task_log ADD COLUMN audience TEXT NOT NULL DEFAULT 'all' CHECK (audience IN ('all', 'provider'))`);
}
