import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import type { Account } from '../../panels/types.js';
import { FULL_SPEED, politely, type Politeness } from '../../util/politeness.js';

const WORKER = fileURLToPath(new URL('./account-worker.js', import.meta.url));
/**
 * The worker's young generation is kept small (V8's default lets it grow to 16 MiB per
 * semi-space): the walk makes much short-lived garbage and holds little, and at 200,000
 * files the default's young generation was a third of the worker's peak memory.
 */
const NODE_FLAGS = ['--max-semi-space-size=2'];
/**
 * A restore's writer also runs with V8's memory-saving heuristics: its live heap is small (6 MiB
 * at 200,000 files, in a heap snapshot) but, with the default growth of the old generation, dead
 * objects of each file's job filled up to 50 MiB before a full GC took them. At 200,000 files
 * its peak went 121-138 -> 92 MiB, user CPU unchanged. A backup's worker is not helped by it (same
 * peak, its CPU a few % higher), so it keeps the default.
 */
const RESTORE_FLAGS = ['--optimize-for-size'];
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface WorkerHandle {
  child: ChildProcess;
  /** Entry stream or result from the worker (its fd 3). */
  output: Readable;
  /** The worker's fd 4 when it was asked for as a pipe (tar stream). */
  tar: Readable | null;
  /** The worker's stdin (null when spawnAccountWorker was given a descriptor for it). */
  input: Writable;
  /** Resolves when the worker exits with 0; rejects with its stderr otherwise. */
  done: Promise<void>;
}

interface Started {
  child: ChildProcess;
  stderr: () => string;
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(politeness: Politeness, stdio: StdioOptions, env: Record<string, string>, flags: string[] = []): Started {
  const { command, args } = politely(politeness, process.execPath, [...NODE_FLAGS, ...flags, WORKER]);
  const child = spawn(command, args, { stdio, cwd: '/', env: { PATH, LANG: 'C.UTF-8', ...env } });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => { if (stderr.length < 65536) stderr += d; });
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  closed.catch(() => undefined);
  // Errors surface through `done`; a closed pipe alone must not crash the root process.
  for (const s of [child.stdio[3], child.stdio[4]]) (s as Readable | null)?.on('error', () => undefined);
  child.stdin?.on('error', () => undefined);
  return { child, stderr: () => stderr, closed };
}

/** The handles that keep root's event loop waiting for a worker (its pipes, the process). */
function handlesOf(child: ChildProcess): { ref(): unknown; unref(): unknown }[] {
  return [child, ...child.stdio.filter((s) => s !== null)] as unknown as { ref(): unknown; unref(): unknown }[];
}

// fd 4 too: an archive's worker writes its tar there (tarFd 'pipe'); an incremental one leaves it unused.
const STANDBY_STDIO: StdioOptions = ['pipe', 'ignore', 'pipe', 'pipe', 'pipe'];
let standby: { started: Started; politeness: Politeness } | null = null;
const samePoliteness = (a: Politeness, b: Politeness): boolean => a.nice === b.nice && a.ioClass === b.ioClass && a.ioPriority === b.ioPriority;

/**
 * Starts a backup worker before its account is known, so that its Node start-up and module
 * loading overlap root's own (the CLI's `backup` calls this first thing). The next backup
 * worker asked for with the same politeness takes it over; it becomes the account before
 * touching the home (account-worker.ts). One nobody takes ends when root does (its stdin closes).
 */
export function prestartAccountWorker(politeness: Politeness = FULL_SPEED): number | undefined {
  if (standby) return standby.started.child.pid;
  const started = start(politeness, STANDBY_STDIO, { TIDEMARK_WORKER_STANDBY: '1' });
  for (const h of handlesOf(started.child)) h.unref();
  standby = { started, politeness };
  const forget = (): void => { if (standby?.started === started) standby = null; };
  void started.closed.then(forget, forget);
  return started.child.pid;
}

/**
 * Starts an account worker: it becomes the account before touching the home (see
 * drop-privileges.ts). The root process only talks to it through pipes.
 */
export function spawnAccountWorker(account: Account, job: Record<string, unknown>, opts: { politeness?: Politeness; tarFd?: number | 'pipe'; stdin?: number } = {}): WorkerHandle {
  if (account.uid === 0) throw new Error(`refusing to work on account ${account.username}: it has uid 0`);
  const politeness = opts.politeness ?? FULL_SPEED;
  const identity = `${account.username}:${account.uid}:${account.gid}`;
  const fullJob = { ...job, home: account.home };
  let started: Started;
  if (standby && job.mode === 'backup' && opts.stdin === undefined && (opts.tarFd === undefined || opts.tarFd === 'pipe') && samePoliteness(standby.politeness, politeness) && standby.started.child.exitCode === null) {
    started = standby.started;
    standby = null;
    for (const h of handlesOf(started.child)) h.ref();
    started.child.stdin!.write(`${JSON.stringify({ identity, job: fullJob })}\n`);
  } else {
    const stdin = opts.stdin ?? 'pipe';
    started = start(politeness, opts.tarFd === undefined ? [stdin, 'ignore', 'pipe', 'pipe'] : [stdin, 'ignore', 'pipe', 'pipe', opts.tarFd], {
      TIDEMARK_WORKER_IDENTITY: identity,
      TIDEMARK_WORKER_JOB: JSON.stringify(fullJob),
    }, job.mode === 'restore' ? RESTORE_FLAGS : []);
  }
  const { child } = started;
  const done = started.closed.then(({ code, signal }) => {
    if (code !== 0) throw new Error(`account worker for ${account.username} failed (${signal ?? `exit ${code}`}): ${started.stderr().trim() || 'no message'}`);
  });
  // Callers await `done` only once they have read the worker's output; a worker killed
  // meanwhile must not be an unhandled rejection (it would end the CLI or the daemon).
  done.catch(() => undefined);
  return { child, output: child.stdio[3] as Readable, tar: opts.tarFd === 'pipe' ? child.stdio[4] as Readable : null, input: child.stdin!, done };
}
