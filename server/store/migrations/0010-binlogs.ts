import type Database from 'better-sqlite3';

export const name = '0010-binlogs';

/**
 * Point in time: which provider destinations receive the server's binary logs, the logs
 * shipped to each (with the time of their first and last event, size and hash), and the binary-log
 * position each database dump is consistent with.
 */
export async function up({ context: db }: { context: Database.Database }): Promise<void> {
  db.exec(`
    CREATE TABLE binlog_destinations (
      destination_id INTEGER PRIMARY KEY REFERENCES destinations(id) ON DELETE CASCADE,
      marked_at TEXT NOT NULL
    );
    CREATE TABLE binlog_files (
      destination_id INTEGER NOT NULL REFERENCES destinations(id) ON DELETE CASCADE,
      file TEXT NOT NULL,                -- as SHOW BINARY LOGS names it: mariadb-bin.000042
      seq INTEGER NOT NULL,              -- its number (000042): logs follow each other without gaps
      size INTEGER NOT NULL,
      sha256 TEXT NOT NULL,
      first_event_at TEXT,               -- NULL: no event with a time (an empty log)
      last_event_at TEXT,
      shipped_at TEXT NOT NULL,
      PRIMARY KEY (destination_id, file)
    );
    CREATE TABLE database_positions (
      destination_id INTEGER NOT NULL,
      account TEXT NOT NULL,
      snapshot_id TEXT NOT NULL,
      database TEXT NOT NULL,
      binlog_file TEXT NOT NULL,
      binlog_position INTEGER NOT NULL,
      gtid TEXT,
      dumped_at TEXT NOT NULL,           -- the dump holds every change logged up to this time
      PRIMARY KEY (destination_id, account, snapshot_id, database),
      FOREIGN KEY (destination_id, account, snapshot_id) REFERENCES snapshots(destination_id, account, id) ON DELETE CASCADE ON UPDATE CASCADE
    );
    CREATE INDEX database_positions_by_database ON database_positions(database, dumped_at);
  `);
}
