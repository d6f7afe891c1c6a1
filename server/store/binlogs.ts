import type { Db } from './database.js';

/** A binary log shipped to a destination (see engine/database/binlog-shipping.ts). */
export interface ShippedBinlog {
  destinationId: number;
  file: string;
  seq: number;
  size: number;
  sha256: string;
  firstEventAt: string | null;
  lastEventAt: string | null;
  shippedAt: string;
}

/** The binary-log position a database dump of a snapshot is consistent with. */
export interface DumpPosition {
  destinationId: number;
  account: string;
  snapshotId: string;
  database: string;
  binlogFile: string;
  binlogPosition: number;
  gtid: string | null;
  dumpedAt: string;
}

interface FileRow {
  destination_id: number; file: string; seq: number; size: number; sha256: string;
  first_event_at: string | null; last_event_at: string | null; shipped_at: string;
}
interface PositionRow {
  destination_id: number; account: string; snapshot_id: string; database: string; binlog_file: string;
  binlog_position: number; gtid: string | null; dumped_at: string;
}

const fileFromRow = (r: FileRow): ShippedBinlog => ({
  destinationId: r.destination_id, file: r.file, seq: r.seq, size: r.size, sha256: r.sha256,
  firstEventAt: r.first_event_at, lastEventAt: r.last_event_at, shippedAt: r.shipped_at,
});
const positionFromRow = (r: PositionRow): DumpPosition => ({
  destinationId: r.destination_id, account: r.account, snapshotId: r.snapshot_id, database: r.database,
  binlogFile: r.binlog_file, binlogPosition: r.binlog_position, gtid: r.gtid, dumpedAt: r.dumped_at,
});

export class BinlogRepository {
  constructor(private readonly db: Db) {}

  /** Destinations marked to receive the binary logs. */
  markedDestinations(): number[] {
    return (this.db.prepare('SELECT destination_id FROM binlog_destinations ORDER BY destination_id').all() as { destination_id: number }[]).map((r) => r.destination_id);
  }
  mark(destinationId: number, on: boolean): void {
    if (on) this.db.prepare('INSERT OR IGNORE INTO binlog_destinations (destination_id, marked_at) VALUES (?, ?)').run(destinationId, new Date().toISOString());
    else this.db.prepare('DELETE FROM binlog_destinations WHERE destination_id = ?').run(destinationId);
  }

  /** Logs shipped to a destination (or to any), oldest first. */
  files(destinationId?: number): ShippedBinlog[] {
    const rows = destinationId === undefined
      ? this.db.prepare('SELECT * FROM binlog_files ORDER BY seq, destination_id').all()
      : this.db.prepare('SELECT * FROM binlog_files WHERE destination_id = ? ORDER BY seq').all(destinationId);
    return (rows as FileRow[]).map(fileFromRow);
  }
  addFile(f: ShippedBinlog): void {
    this.db.prepare(`INSERT OR REPLACE INTO binlog_files (destination_id, file, seq, size, sha256, first_event_at, last_event_at, shipped_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`).run(f.destinationId, f.file, f.seq, f.size, f.sha256, f.firstEventAt, f.lastEventAt, f.shippedAt);
  }
  removeFile(destinationId: number, file: string): void {
    this.db.prepare('DELETE FROM binlog_files WHERE destination_id = ? AND file = ?').run(destinationId, file);
  }

  addPosition(p: DumpPosition): void {
    this.db.prepare(`INSERT OR REPLACE INTO database_positions (destination_id, account, snapshot_id, database, binlog_file, binlog_position, gtid, dumped_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`).run(p.destinationId, p.account, p.snapshotId, p.database, p.binlogFile, p.binlogPosition, p.gtid, p.dumpedAt);
  }
  /** Dump positions of an account's database (every destination), newest first. */
  positions(account: string, database: string): DumpPosition[] {
    return (this.db.prepare('SELECT * FROM database_positions WHERE account = ? AND database = ? ORDER BY dumped_at DESC').all(account, database) as PositionRow[])
      .map(positionFromRow);
  }
  /** The databases of an account that have a dump with a log position. */
  databasesOf(account: string): string[] {
    return (this.db.prepare('SELECT DISTINCT database FROM database_positions WHERE account = ? ORDER BY database').all(account) as { database: string }[]).map((r) => r.database);
  }
  /** Every dump position kept (retention of the logs keeps what the oldest needs). */
  allPositions(): DumpPosition[] {
    return (this.db.prepare('SELECT * FROM database_positions ORDER BY dumped_at').all() as PositionRow[]).map(positionFromRow);
  }
}
