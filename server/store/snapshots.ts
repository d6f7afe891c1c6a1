import type { Db } from './database.js';
import type { Item, Structure } from './jobs.js';
import type { SiteRecord } from '../engine/sites/site-record.js';

export interface SnapshotRecord {
  id: string;
  destinationId: number;
  account: string;
  jobId: number | null;
  structure: Structure;
  /** `damaged`: a verify or a restore found stored content that does not match its hashes (see services/verify.ts). */
  status: 'completed' | 'partial' | 'damaged';
  startedAt: string;
  finishedAt: string;
  items: Item[];
  files: number;
  bytes: number;
  storedBytes: number;
  databases: string[];
  locked: boolean;
  note: string;
  /** The schedule that made it ('manual': on demand); retention keeps each schedule's own. Default 'manual'. */
  schedule?: string;
  /**
   * The account identity the snapshot was taken of (store/accounts.ts); null: nobody's but the
   * provider's (found by a reindex and older than the account now of that name). Default null.
   */
  accountId?: number | null;
  /** The WordPress sites the snapshot records (engine/sites/); null or absent: not looked for. */
  sites?: SiteRecord[] | null;
}

interface Row {
  id: string; destination_id: number; account: string; job_id: number | null; structure: string; status: string;
  started_at: string; finished_at: string; items: string; files: number; bytes: number; stored_bytes: number;
  databases: string; locked: number; note: string; schedule: string; account_id: number | null; sites: string | null;
}

const fromRow = (r: Row): SnapshotRecord => ({
  id: r.id, destinationId: r.destination_id, account: r.account, jobId: r.job_id, structure: r.structure as Structure,
  status: r.status as SnapshotRecord['status'], startedAt: r.started_at, finishedAt: r.finished_at,
  items: JSON.parse(r.items) as Item[], files: r.files, bytes: r.bytes, storedBytes: r.stored_bytes,
  databases: JSON.parse(r.databases) as string[], locked: r.locked === 1, note: r.note, schedule: r.schedule,
  accountId: r.account_id, sites: r.sites === null || r.sites === undefined ? null : JSON.parse(r.sites) as SiteRecord[],
});

export class SnapshotRepository {
  constructor(private readonly db: Db) {}

  list(filter: { account?: string; destinationId?: number; accountId?: number } = {}): SnapshotRecord[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.account !== undefined) { where.push('account = ?'); args.push(filter.account); }
    if (filter.destinationId !== undefined) { where.push('destination_id = ?'); args.push(filter.destinationId); }
    if (filter.accountId !== undefined) { where.push('account_id = ?'); args.push(filter.accountId); }
    const sql = `SELECT * FROM snapshots ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY finished_at DESC, id DESC`;
    return (this.db.prepare(sql).all(...args) as Row[]).map(fromRow);
  }
  /** One snapshot by its primary key: a lookup, where byId reads every row of a large table. */
  byKey(destinationId: number, account: string, id: string): SnapshotRecord | undefined {
    const r = this.db.prepare('SELECT * FROM snapshots WHERE destination_id = ? AND account = ? AND id = ?').get(destinationId, account, id) as Row | undefined;
    return r ? fromRow(r) : undefined;
  }
  /** Snapshot ids are unique per destination and account; across them the id alone is looked up. */
  byId(id: string): SnapshotRecord[] {
    return (this.db.prepare('SELECT * FROM snapshots WHERE id = ?').all(id) as Row[]).map(fromRow);
  }
  latest(destinationId: number, account: string): SnapshotRecord | null {
    const r = this.db.prepare('SELECT * FROM snapshots WHERE destination_id = ? AND account = ? ORDER BY finished_at DESC, id DESC LIMIT 1')
      .get(destinationId, account) as Row | undefined;
    return r ? fromRow(r) : null;
  }
  countByDestination(destinationId: number): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM snapshots WHERE destination_id = ?').get(destinationId) as { n: number }).n;
  }
  insert(s: SnapshotRecord): void {
    this.db.prepare(`INSERT INTO snapshots (id, destination_id, account, job_id, structure, status, started_at, finished_at, items,
      files, bytes, stored_bytes, databases, locked, note, schedule, account_id, sites) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(s.id, s.destinationId, s.account, s.jobId, s.structure, s.status, s.startedAt, s.finishedAt, JSON.stringify(s.items),
        s.files, s.bytes, s.storedBytes, JSON.stringify(s.databases), s.locked ? 1 : 0, s.note, s.schedule ?? 'manual', s.accountId ?? null,
        s.sites ? JSON.stringify(s.sites) : null);
  }
  /** Rewrites what the catalog knows of one snapshot (reindex); locked and note are written as given. A `damaged` mark stays (only a verify clears it). */
  update(s: SnapshotRecord): void {
    this.db.prepare(`UPDATE snapshots SET job_id = ?, structure = ?, status = CASE status WHEN 'damaged' THEN status ELSE ? END, started_at = ?, finished_at = ?, items = ?, files = ?,
      bytes = ?, stored_bytes = ?, databases = ?, locked = ?, note = ?, sites = ? WHERE destination_id = ? AND account = ? AND id = ?`)
      .run(s.jobId, s.structure, s.status, s.startedAt, s.finishedAt, JSON.stringify(s.items), s.files, s.bytes, s.storedBytes,
        JSON.stringify(s.databases), s.locked ? 1 : 0, s.note, s.sites ? JSON.stringify(s.sites) : null, s.destinationId, s.account, s.id);
  }
  /** The account was renamed in the panel: its snapshots on this destination follow it. Returns how many moved. */
  renameAccount(destinationId: number, from: string, to: string): number {
    return this.db.prepare('UPDATE snapshots SET account = ? WHERE destination_id = ? AND account = ?').run(to, destinationId, from).changes;
  }
  /** Hands a snapshot to an account identity (or to nobody but the provider: null). */
  setAccountId(destinationId: number, account: string, id: string, accountId: number | null): void {
    this.db.prepare('UPDATE snapshots SET account_id = ? WHERE destination_id = ? AND account = ? AND id = ?').run(accountId, destinationId, account, id);
  }
  setSchedule(destinationId: number, account: string, id: string, schedule: string): void {
    this.db.prepare('UPDATE snapshots SET schedule = ? WHERE destination_id = ? AND account = ? AND id = ?').run(schedule, destinationId, account, id);
  }
  setStatus(destinationId: number, account: string, id: string, status: SnapshotRecord['status']): void {
    this.db.prepare('UPDATE snapshots SET status = ? WHERE destination_id = ? AND account = ? AND id = ?').run(status, destinationId, account, id);
  }
  setLocked(destinationId: number, account: string, id: string, locked: boolean): void {
    this.db.prepare('UPDATE snapshots SET locked = ? WHERE destination_id = ? AND account = ? AND id = ?').run(locked ? 1 : 0, destinationId, account, id);
  }
  setNote(destinationId: number, account: string, id: string, note: string): void {
    this.db.prepare('UPDATE snapshots SET note = ? WHERE destination_id = ? AND account = ? AND id = ?').run(note, destinationId, account, id);
  }
  remove(destinationId: number, account: string, id: string): void {
    this.db.prepare('DELETE FROM snapshots WHERE destination_id = ? AND account = ? AND id = ?').run(destinationId, account, id);
  }
}
