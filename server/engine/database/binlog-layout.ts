/** Where shipped binary logs live on a destination: beside the accounts, under a name no account can have. */
import { BINLOG_FILE_NAME } from './dump-coordinates.js';

/** `.binlogs/<file>` (account names cannot start with a dot). */
export const BINLOG_DIR = '.binlogs';

export function binlogPath(file: string): string {
  if (!BINLOG_FILE_NAME.test(file)) throw new Error(`invalid binary log name ${JSON.stringify(file)}`);
  return `${BINLOG_DIR}/${file}`;
}

/** The number at the end of a log's name (mariadb-bin.000042 → 42). */
export function binlogSeq(file: string): number {
  if (!BINLOG_FILE_NAME.test(file)) throw new Error(`invalid binary log name ${JSON.stringify(file)}`);
  return Number(file.slice(file.lastIndexOf('.') + 1));
}
