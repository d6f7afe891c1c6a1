/**
 * Replays the logged changes of one database (or of some of its tables) from binary log files,
 * up to a moment, into a database of the caller's choice.
 *
 * Not `mariadb-binlog --database | mariadb`: that filter keeps a statement by the database it ran
 * in, not by the tables it changes, and piping text through the client would let the bytes an
 * account wrote (statement text, with its own sql_mode) decide where a statement ends. Here the
 * events are read one by one: row changes are kept by the database and table of their table map
 * and replayed as the server's binary row images (`BINLOG '…'`, base64: no text of the account's
 * is parsed as SQL); statements (DDL) pass only through binlog-statements.ts, one per query,
 * run by a database user that may touch the target database and nothing else.
 */
import type { Connection } from 'mysql2/promise';
import type { MysqlCredentials } from '../../panels/types.js';
import { errorReason, withConnection } from './connection.js';
import {
  BinlogFormatError, EventType, endsStatement, gtidIsStandalone, isRowsEvent, parseQueryEvent, parseTableMap, readBinlogFile,
  retargetTableMap, rowsTableId, withStatementEnd, type BinlogEvent, type FormatDescription,
} from './binlog-events.js';
import { judgeStatement, PARSING_MODE_NAMES } from './binlog-statements.js';

export interface ReplayRequest {
  /** Credentials of a user that may change `target` only (and run BINLOG statements). */
  creds: MysqlCredentials;
  /** Local copies of the logs, in order; the first is read from `startPosition`. */
  files: string[];
  startPosition: number;
  /** Last second replayed (seconds since the epoch): a transaction is replayed when all its events are at or before it. */
  stopAt: number;
  source: string;
  target: string;
  /** Only these tables of `source` (null: all). */
  tables: ReadonlySet<string> | null;
  /** Read and judge every event, run nothing (no connection): finds what would refuse the replay before anything is overwritten. */
  dryRun?: boolean;
}

export interface ReplayOutcome {
  transactions: number;
  rowEvents: number;
  statements: number;
  /** Statements of the database that were not replayed, each with why. */
  skipped: string[];
  /** Time of the last event replayed (seconds), or null. */
  lastEventAt: number | null;
  /** Whether an event after `stopAt` was seen (else the logs end before the moment). */
  reachedStop: boolean;
}

export class ReplayRefusedError extends Error {}

type Item = { kind: 'rows'; events: Buffer[] } | { kind: 'sql'; sql: string; sqlMode: bigint | null };

const DML = /^\s*(INSERT|UPDATE|DELETE|REPLACE|LOAD)\b/i;

export async function replayBinlogs(req: ReplayRequest): Promise<ReplayOutcome> {
  if (req.dryRun) return replayOn(null, req);
  return withConnection(req.creds, (conn) => replayOn(conn, req), { database: req.target });
}

async function replayOn(conn: Connection | null, req: ReplayRequest): Promise<ReplayOutcome> {
  const outcome: ReplayOutcome = { transactions: 0, rowEvents: 0, statements: 0, skipped: [], lastEventAt: null, reachedStop: false };
  {
    let fde: FormatDescription | null = null;
    let fdeSent = false;
    let group: BinlogEvent[] = [];
    let standalone = false;
    let open = false;

    const apply = async (events: BinlogEvent[]): Promise<void> => {
      const items = planGroup(events, fde!, req, outcome);
      if (items.length === 0) return;
      if (!conn) { outcome.transactions++; return; }
      if (!fdeSent) {
        await run(conn, `BINLOG '${fde!.raw.toString('base64')}'`);
        fdeSent = true;
      }
      const transactional = items.every((i) => i.kind === 'rows');
      if (transactional) await run(conn, 'START TRANSACTION');
      for (const item of items) {
        if (item.kind === 'rows') {
          await run(conn, `BINLOG '${Buffer.concat(item.events).toString('base64')}'`);
          outcome.rowEvents += item.events.length;
        } else {
          const refused = await runStatement(conn, item.sql, item.sqlMode);
          if (refused) outcome.skipped.push(refused);
          else outcome.statements++;
        }
      }
      if (transactional) await run(conn, 'COMMIT');
      outcome.transactions++;
    };

    outer: for (let f = 0; f < req.files.length; f++) {
      for await (const e of readBinlogFile(req.files[f]!, { from: f === 0 ? req.startPosition : 4, complete: true })) {
        if (e.type === EventType.FORMAT_DESCRIPTION) {
          if (open) throw new BinlogFormatError('a log ends inside a transaction');
          fde = e.format;
          fdeSent = false;
          continue;
        }
        if (!fde) throw new BinlogFormatError('a log without a format description');
        switch (e.type) {
          case EventType.ROTATE: case EventType.STOP: case EventType.BINLOG_CHECKPOINT: case EventType.GTID_LIST:
          case EventType.HEARTBEAT: case EventType.ANNOTATE_ROWS:
            continue;
          case EventType.START_ENCRYPTION:
            throw new ReplayRefusedError('the binary logs are encrypted (encrypt_binlog): Tidemark cannot read them');
          case EventType.QUERY_COMPRESSED:
            throw new ReplayRefusedError('the binary logs are compressed (log_bin_compress): Tidemark cannot replay them');
          case EventType.INCIDENT:
            throw new ReplayRefusedError('the binary log records an incident (changes may be missing from it): no restore past it');
          default:
        }
        if (e.timestamp > req.stopAt) {
          outcome.reachedStop = true;
          break outer;
        }
        if (e.type === EventType.GTID) {
          if (open) throw new BinlogFormatError('a transaction without its end');
          group = [];
          standalone = gtidIsStandalone(e);
          open = true;
          continue;
        }
        if (!open) {
          // Without GTID events (not MariaDB 10): not supported.
          throw new ReplayRefusedError('the binary log has events outside a GTID transaction (only MariaDB 10 and later logs are replayed)');
        }
        group.push(e);
        const ends = e.type === EventType.XID
          || (e.type === EventType.QUERY && (standalone || /^\s*(COMMIT|ROLLBACK)\s*$/i.test(parseQueryEvent(e, fde).query.toString('latin1'))));
        if (ends) {
          open = false;
          const events = group;
          group = [];
          await apply(events);
          outcome.lastEventAt = e.timestamp;
        }
      }
    }
    return outcome;
  }
}

/** What of one transaction is replayed, in order. */
function planGroup(events: BinlogEvent[], fde: FormatDescription, req: ReplayRequest, outcome: ReplayOutcome): Item[] {
  const items: Item[] = [];
  const kept = new Map<bigint, Buffer>();
  let maps: Buffer[] = [];
  let rows: { raw: Buffer; event: BinlogEvent }[] = [];
  for (const e of events) {
    if (e.type === EventType.TABLE_MAP) {
      const tm = parseTableMap(e, fde);
      if (tm.db === req.source && (!req.tables || req.tables.has(tm.table))) {
        const raw = retargetTableMap(e, fde, req.target);
        kept.set(tm.tableId, raw);
        maps.push(raw);
      } else {
        kept.delete(tm.tableId);
      }
    } else if (isRowsEvent(e.type)) {
      if (kept.has(rowsTableId(e, fde))) rows.push({ raw: e.raw, event: e });
      if (endsStatement(e, fde)) {
        if (rows.length > 0) {
          const last = rows[rows.length - 1]!;
          if (!endsStatement(last.event, fde)) last.raw = withStatementEnd(last.event, fde);
          items.push({ kind: 'rows', events: [...maps, ...rows.map((r) => r.raw)] });
        }
        maps = [];
        rows = [];
        kept.clear();
      }
    } else if (e.type === EventType.QUERY) {
      const q = parseQueryEvent(e, fde);
      const text = q.query.toString('utf8');
      if (!Buffer.from(text, 'utf8').equals(q.query)) {
        if (q.db === req.source) outcome.skipped.push('a statement that is not UTF-8 text was not replayed');
        continue;
      }
      const verdict = judgeStatement(text, q.db, req.source, req.target, req.tables);
      if (verdict.kind === 'run') items.push({ kind: 'sql', sql: verdict.sql, sqlMode: q.sqlMode });
      else if (verdict.kind === 'refuse') {
        if (DML.test(text)) {
          throw new ReplayRefusedError(`the binary log holds changes of ${req.source} logged as statements (binlog_format STATEMENT or MIXED); a point-in-time restore needs binlog_format=ROW`);
        }
        outcome.skipped.push(verdict.reason);
      }
    }
    // XID, INTVAR, RAND, USER_VAR: nothing to replay by themselves.
  }
  return items;
}

async function run(conn: Connection, sql: string): Promise<void> {
  try {
    await conn.query(sql);
  } catch (err) {
    throw new Error(`replaying the binary log failed: ${errorReason(err, { user: '' })}`);
  }
}

/**
 * Runs one logged statement with the sql_mode it ran with; one that ran under a mode changing
 * how its text reads is not run (the reason is returned).
 */
async function runStatement(conn: Connection, sql: string, sqlMode: bigint | null): Promise<string | null> {
  if (sqlMode === null) return `a statement without its sql_mode was not replayed: ${sql.slice(0, 120)}`;
  await run(conn, `SET SESSION sql_mode = ${sqlMode.toString()}`);
  const [rows] = await conn.query({ sql: 'SELECT @@SESSION.sql_mode', rowsAsArray: true });
  const modes = String((rows as unknown[][])[0]?.[0] ?? '').toUpperCase().split(',');
  const parsing = modes.filter((m) => PARSING_MODE_NAMES.includes(m));
  if (parsing.length) return `a statement run with sql_mode ${parsing.join(',')} was not replayed: ${sql.slice(0, 120)}`;
  await run(conn, sql);
  return null;
}
