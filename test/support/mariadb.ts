/**
 * A private MariaDB server for the tests: its own datadir and socket in a temporary directory,
 * no TCP, root@localhost without a password. The machine's own server and /var/lib/mysql are
 * never used.
 *
 * It starts the way a packaged server does: with the configuration files Debian's mariadb-server
 * reads (/etc/mysql/my.cnf and its !includedir's, such as mariadb.conf.d/50-server.cnf with
 * collation-server = utf8mb4_general_ci), then only the options that make it private (datadir,
 * socket, pid file, logs, no TCP, no binary log unless asked for) and the caller's own, in a
 * defaults file.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import type { MysqlCredentials } from '../../server/panels/types.js';

const execFileP = promisify(execFile);
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

function findBinary(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin', '/sbin', '/bin'];
  for (const d of dirs) {
    const p = path.join(d, name);
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch { /* next */ }
  }
  return null;
}

/** A base directory the mysql user can traverse, with room for a socket path (< 108 bytes). */
function baseDir(): string {
  const tmp = os.tmpdir();
  const traversable = (dir: string): boolean => {
    for (let d = path.resolve(dir); ; d = path.dirname(d)) {
      try { if ((fs.statSync(d).mode & 0o001) === 0) return false; } catch { return false; }
      if (d === path.dirname(d)) return true;
    }
  };
  return tmp.length < 60 && traversable(tmp) ? tmp : '/tmp';
}

function tail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no error log)';
  }
}

const WATCHDOG = `read _ignored
kill -TERM "$1" 2>/dev/null
i=0
while kill -0 "$1" 2>/dev/null && [ "$i" -lt 300 ]; do sleep 0.1; i=$((i+1)); done
kill -KILL "$1" 2>/dev/null
rm -rf -- "$2"
`;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface TestMariaDb {
  creds: MysqlCredentials;
  /** With `binlog`: the binary logs' base name (`<datadir>/mariadb-bin`). */
  binlogBase: string | null;
  /** The temporary directory (datadir, socket, logs). */
  dir: string;
  stop(): Promise<void>;
}

/** What Debian's packaged server reads, as `!include`/`!includedir` lines (those that exist). */
export function debianConfigIncludes(): string[] {
  if (fs.existsSync(DEBIAN_MY_CNF)) return [`!include ${DEBIAN_MY_CNF}`];
  const dirs = DEBIAN_CONF_DIRS.filter((d) => fs.existsSync(d));
  // No packaged configuration on this machine: Debian 12's 50-server.cnf, as it ships.
  return dirs.length ? dirs.map((d) => `!includedir ${d}`) : ['[mysqld]', 'character-set-server = utf8mb4', 'collation-server = utf8mb4_general_ci'];
}

const DEBIAN_MY_CNF = '/etc/mysql/my.cnf';
const DEBIAN_CONF_DIRS = ['/etc/mysql/conf.d/', '/etc/mysql/mariadb.conf.d/'];

export interface TestMariaDbOptions {
  /** Extra `[mysqld]` lines (`collation-server = …`), after Debian's files. */
  serverConfig?: string[];
  /**
   * Binary logging on, as a provider would turn it on for point-in-time restores: `log_bin`
   * under the private datadir, `binlog_format = ROW`, a `server_id`. Everything else stays
   * the packaged configuration.
   */
  binlog?: boolean;
}

export async function startTestMariaDb(options: TestMariaDbOptions = {}): Promise<TestMariaDb> {
  const mariadbd = findBinary('mariadbd') ?? findBinary('mysqld');
  const installDb = findBinary('mariadb-install-db') ?? findBinary('mysql_install_db');
  if (!mariadbd || !installDb) {
    throw new Error('the database tests need a MariaDB server binary (mariadbd and mariadb-install-db): apt-get install mariadb-server is needed');
  }
  const started = Date.now();
  const dir = fs.mkdtempSync(path.join(baseDir(), 'tidemark-mariadb-'));
  const datadir = path.join(dir, 'data');
  const socket = path.join(dir, 'mysql.sock');
  const pidFile = path.join(dir, 'mariadbd.pid');
  const errorLog = path.join(dir, 'error.log');
  const installLog = path.join(dir, 'install.log');
  const defaultsFile = path.join(dir, 'my.cnf');
  // Later lines win over what the included files say: everything that could reach the
  // machine's own server (its socket, port, datadir, logs) is set to the private one.
  const defaults = [
    ...debianConfigIncludes(),
    '[mysqld]',
    `datadir = ${datadir}`, `socket = ${socket}`, `pid-file = ${pidFile}`, `log-error = ${errorLog}`, `tmpdir = ${dir}`,
    'skip-networking', 'port = 0', 'user = mysql', 'general-log = 0', 'slow-query-log = 0',
    ...(options.binlog
      ? [`log-bin = ${path.join(datadir, 'mariadb-bin')}`, 'binlog-format = ROW', 'server-id = 1', 'expire-logs-days = 0']
      : ['skip-log-bin']),
    `innodb-data-home-dir = ${datadir}`, `innodb-log-group-home-dir = ${datadir}`, `innodb-undo-directory = ${datadir}`, `aria-log-dir-path = ${datadir}`,
    // Small InnoDB files: the server starts in well under a second.
    'innodb-log-file-size = 8M', 'innodb-buffer-pool-size = 32M', 'skip-name-resolve', 'event-scheduler = ON',
    ...(options.serverConfig ?? []),
    '',
  ].join('\n');

  let child: ChildProcess | undefined;
  let watchdog: ChildProcess | undefined;
  let stopped = false;
  const onExit = (): void => {
    // The test process ends without stop(): do not leave a server behind.
    if (child?.pid && child.exitCode === null) { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', onExit);
  const cleanup = (): void => {
    process.off('exit', onExit);
    if (watchdog?.pid && watchdog.exitCode === null) { try { watchdog.kill('SIGKILL'); } catch { /* gone */ } }
    fs.rmSync(dir, { recursive: true, force: true });
  };

  try {
    // The server runs as mysql: it must reach the directory and create the socket there;
    // 0755 so that workers running as an account's user can reach the socket too.
    fs.chmodSync(dir, 0o755);
    fs.chownSync(dir, ...(await mysqlIds()));
    fs.writeFileSync(defaultsFile, defaults, { mode: 0o644 });
    try {
      const r = await execFileP(installDb, [
        `--defaults-file=${defaultsFile}`, '--auth-root-authentication-method=normal', '--skip-test-db',
        `--datadir=${datadir}`, '--user=mysql',
      ], { timeout: START_TIMEOUT_MS, maxBuffer: 16 << 20 });
      fs.writeFileSync(installLog, r.stdout + r.stderr);
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`mariadb-install-db failed: ${e.message}\n${(e.stdout ?? '') + (e.stderr ?? '')}`.slice(0, 8000));
    }

    child = spawn(mariadbd, [`--defaults-file=${defaultsFile}`], { stdio: 'ignore', detached: false });
    child.unref();
    // Killed by a signal, the test process runs no exit hook: a watchdog whose stdin is a pipe
    // from this process sees end-of-file when it dies (however it dies) and stops the server.
    watchdog = spawn('/bin/sh', ['-c', WATCHDOG, 'tidemark-mariadb-watchdog', String(child.pid), dir], {
      stdio: ['pipe', 'ignore', 'ignore'], detached: true,
    });
    watchdog.on('error', () => { /* no watchdog: the exit hook still helps */ });
    watchdog.unref();
    (watchdog.stdin as Socket | null)?.unref();
    let exited: string | null = null;
    child.on('exit', (code, signal) => { exited = code !== null ? `exit code ${code}` : `signal ${signal}`; });
    child.on('error', (e) => { exited = e.message; });

    const deadline = Date.now() + START_TIMEOUT_MS;
    let notPrivate: string | null = null;
    for (;;) {
      if (exited) throw new Error(`mariadbd stopped while starting (${exited}); error log:\n${tail(errorLog)}`);
      if (fs.existsSync(socket)) {
        try {
          const conn = await mysql.createConnection({ socketPath: socket, user: 'root', connectTimeout: 2000 });
          let where: { d: string; s: string; n: number; b: number };
          try {
            const [rows] = await conn.query('SELECT @@datadir AS d, @@socket AS s, @@skip_networking AS n, @@log_bin AS b');
            where = (rows as typeof where[])[0]!;
          } finally {
            await conn.end();
          }
          if (path.resolve(where.d) !== path.resolve(datadir) || where.s !== socket || Number(where.n) !== 1 || Number(where.b) !== (options.binlog ? 1 : 0)) {
            notPrivate = JSON.stringify(where);
          }
          break;
        } catch { /* not ready yet */ }
      }
      if (Date.now() > deadline) {
        throw new Error(`the test MariaDB server did not accept connections on ${socket} within ${START_TIMEOUT_MS / 1000} s; error log:\n${tail(errorLog)}`);
      }
      await sleep(50);
    }
    if (notPrivate) throw new Error(`the test MariaDB server is not private (its configuration overrides the test's): ${notPrivate}`);
  } catch (err) {
    if (child?.pid && child.exitCode === null) { try { child.kill('SIGKILL'); } catch { /* gone */ } }
    cleanup();
    throw err;
  }

  const proc = child;
  const startMs = Date.now() - started;
  if (process.env.TIDEMARK_TEST_VERBOSE) console.error(`test MariaDB server ready in ${startMs} ms (${dir})`);

  return {
    creds: { socket, user: 'root' },
    binlogBase: options.binlog ? path.join(datadir, 'mariadb-bin') : null,
    dir,
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.ref(); // keep the process alive while waiting
        const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await gone;
        clearTimeout(timer);
      }
      cleanup();
    },
  };
}

async function mysqlIds(): Promise<[number, number]> {
  try {
    const { stdout } = await execFileP('id', ['-u', 'mysql']);
    const { stdout: g } = await execFileP('id', ['-g', 'mysql']);
    return [Number(stdout.trim()), Number(g.trim())];
  } catch {
    throw new Error('the database tests need the mysql system user (created by apt-get install mariadb-server)');
  }
}

/** Statements run as the server's root over its socket, in the server's default session. */
export async function rootQuery(creds: MysqlCredentials, statements: string, database?: string): Promise<any[]> {
  const conn = await mysql.createConnection({ socketPath: creds.socket!, user: 'root', multipleStatements: true, ...(database ? { database } : {}) });
  try {
    const [rows] = await conn.query(statements);
    return rows as any[];
  } finally {
    await conn.end();
  }
}
