/**
 * The binary-log coordinates a dump is consistent with, read from what mariadb-dump writes with
 * `--master-data=2`: a commented `CHANGE MASTER TO MASTER_LOG_FILE='…', MASTER_LOG_POS=…;` in
 * the dump's preamble (taken under the dump's consistent snapshot, MariaDB's
 * `Binlog_snapshot_file`/`_position`), and a commented `SET GLOBAL gtid_slave_pos='…';` after
 * the data.
 *
 * The rows of the dump are the account's: the file and position are only taken from the
 * preamble, before the first line that is not a comment or a versioned `/*!…*\/` setting, so no
 * value an account stored can pose as them. The GTID (informational: replay uses file and
 * position) is the last such line of the dump, which mariadb-dump writes after every table,
 * routine and event.
 */
import { Transform, type TransformCallback } from 'node:stream';

export interface BinlogCoordinates {
  /** A binary log's file name, without directory: `mariadb-bin.000042`. */
  file: string;
  position: number;
  /**
   * When the dump had its consistent snapshot (the coordinates were read then, after the server
   * took them): the dump holds every change logged up to this time.
   */
  at: string;
  /** MariaDB's GTID position (`0-1-42`, several domains comma-separated), when the dump printed one. */
  gtid?: string;
}

/** A binary log's file name as SHOW BINARY LOGS lists it (no directory). */
export const BINLOG_FILE_NAME = /^[A-Za-z0-9_.-]{1,200}\.[0-9]{6,10}$/;
const CHANGE_MASTER = /^-- CHANGE MASTER TO MASTER_LOG_FILE='([^'\\]{1,200})', MASTER_LOG_POS=([0-9]{1,19});\s*$/;
const GTID_LINE = /^-- SET GLOBAL gtid_slave_pos='([0-9]{1,10}-[0-9]{1,10}-[0-9]{1,20}(?:,[0-9]{1,10}-[0-9]{1,10}-[0-9]{1,20}){0,63})';\s*$/;
const PREAMBLE_LINE = /^(?:--.*|\/\*[!M].*|\s*)$/;
const PREAMBLE_MAX = 64 * 1024;

/** Passes a dump through unchanged and finds its coordinates; `coordinates()` after the end. */
export class DumpCoordinatesReader extends Transform {
  private inPreamble = true;
  private preambleBytes = 0;
  private partial = '';
  private found: BinlogCoordinates | null = null;
  private gtid: string | undefined;
  /** The text of the last few lines (the GTID line is near the end). */
  private tail = '';

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.push(chunk);
    if (this.inPreamble) {
      this.preambleBytes += chunk.length;
      const text = this.partial + chunk.toString('latin1');
      const lines = text.split('\n');
      this.partial = lines.pop() ?? '';
      for (const line of lines) {
        if (!this.inPreamble) break;
        const m = CHANGE_MASTER.exec(line);
        if (m && BINLOG_FILE_NAME.test(m[1]!)) {
          const position = Number(m[2]);
          if (Number.isSafeInteger(position)) this.found = { file: m[1]!, position, at: new Date().toISOString() };
        } else if (!PREAMBLE_LINE.test(line)) {
          this.inPreamble = false;
        }
      }
      if (this.preambleBytes > PREAMBLE_MAX) this.inPreamble = false;
      if (!this.inPreamble) this.partial = '';
    }
    this.tail = (this.tail + chunk.toString('latin1')).slice(-4096);
    done();
  }

  override _flush(done: TransformCallback): void {
    const lines = this.tail.split('\n');
    for (let i = lines.length - 1; i >= 0; i--) {
      const m = GTID_LINE.exec(lines[i]!);
      if (m) { this.gtid = m[1]!; break; }
    }
    done();
  }

  coordinates(): BinlogCoordinates | null {
    if (!this.found) return null;
    return this.gtid ? { ...this.found, gtid: this.gtid } : { ...this.found };
  }
}
