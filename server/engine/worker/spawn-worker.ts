import type { ChildProcess, StdioOptions } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import type { Account } from '../../panels/types.js';
import { spawn } from 'node:child_process';
import { FULL_SPEED, spawnPolitely, workerTakesPoliteness, type Politeness } from '../../util/politeness.js';
import { tarPipe, tarPumpAvailable } from '../../native/tar-pump.js';
import { closeQuietly } from '../../util/close-fd.js';
import { descriptorChannelSupported, socketPair } from '../../native/pass-fds.js';

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
/**
 * A restore whose content the writer reads from descriptors (a local destination) also runs
 * without V8's optimizing compiler (`--max-opt=1`: interpreter and baseline code only). The
 * pool does the bytes; the writer's JavaScript is a few short loops per file, and in a
 * restore into a new folder of 20,000 files TurboFan spent 0.4 s of CPU on V8's threads
 * compiling them (the writer's main thread about 0.8 s in all) and added 6,000-8,000 page
 * faults. Without it the restore's CPU went 5.2-5.5 -> 4.8-4.9 s (perf stat, 3 of 3
 * interleaved pairs). A restore whose content crosses the stream (from SSH) keeps it: there
 * the writer's JavaScript handles every piece of content.
 */
const DESCRIPTOR_RESTORE_FLAGS = [...RESTORE_FLAGS, '--max-opt=1'];
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface WorkerHandle {
  child: ChildProcess;
  /** Entry stream or result from the worker (its fd 3). */
  output: Readable;
  /** The worker's fd 4 when it was asked for as a pipe (tar stream). */
  tar: Readable | null;
  /** The read end of the pipe on the worker's fd 4 when it was asked for as 'fd': root's to read and close. */
  tarReadFd: number | null;
  /**
   * Root's end of the descriptor channel (the worker's fd 5) when it was asked for and the
   * worker has it (the job then says `descriptors: true`): root's to read (takeFd) and close.
   */
  descriptorFd: number | null;
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

/**
 * Where the worker takes its politeness itself (takePoliteness, before it reads the home), it
 * starts at root's priority: its Node start-up, which reads nothing of the account's, was the
 * slowest part of a small backup on a busy machine at nice 10. Otherwise it starts under it.
 */
const TAKES_POLITENESS = workerTakesPoliteness();

function start(politeness: Politeness, stdio: StdioOptions, env: Record<string, string>, flags: string[] = []): Started {
  const argv = [...NODE_FLAGS, ...flags, WORKER];
  const options = { stdio, cwd: '/', env: { PATH, LANG: 'C.UTF-8', ...env } };
  const child = TAKES_POLITENESS ? spawn(process.execPath, argv, options) : spawnPolitely(politeness, process.execPath, argv, options);
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

/**
 * start() with a plain pipe on the worker's fd 4 (`stdio` puts the write end where it goes):
 * root gets the read end, its own to read and close. The worker has its own copy of the
 * write end: root's goes at once, or the pipe never ends.
 */
function startWithTarPipe(politeness: Politeness, stdio: (fd4: number) => StdioOptions, env: Record<string, string>, flags: string[] = []): { started: Started; tarRead: number } {
  const [read, write] = tarPipe();
  try {
    return { started: start(politeness, stdio(write), env, flags), tarRead: read };
  } catch (err) {
    closeQuietly(read);
    throw err;
  } finally {
    closeQuietly(write);
  }
}

/**
 * fd 4 too: an archive's worker writes its tar there, an incremental one leaves it unused.
 * With the native addon it is a plain pipe whose read end root keeps (tarRead), so that the
 * archive's copy on libuv's pool (native/tar-pump.c) can take the standby as well; else
 * Node's own pipe.
 */
const standbyStdio = (fd5: number | null) => (fd4: number | 'pipe'): StdioOptions => (fd5 === null ? ['pipe', 'ignore', 'pipe', 'pipe', fd4] : ['pipe', 'ignore', 'pipe', 'pipe', fd4, fd5]);
let standby: { started: Started; politeness: Politeness; tarRead: number | null; channel: number | null } | null = null;

/**
 * A descriptor channel for a backup worker: root's end and the worker's (given to it as fd 5,
 * then closed in root once the worker is spawned), or null without the native addon.
 */
function descriptorChannel(): { root: number; worker: number } | null {
  if (!descriptorChannelSupported()) return null;
  const [root, worker] = socketPair();
  return { root, worker };
}
const samePoliteness = (a: Politeness, b: Politeness): boolean => a.nice === b.nice && a.ioClass === b.ioClass && a.ioPriority === b.ioPriority;

/**
 * Starts a backup worker before its account is known, so that its Node start-up and module
 * loading overlap root's own (the CLI's `backup` calls this first thing). The next backup
 * worker asked for takes it over (with the same politeness, unless the worker takes its
 * politeness itself: it is then told it with the account); it becomes the account before
 * touching the home (account-worker.ts). One nobody takes ends when root does (its stdin closes).
 */
export function prestartAccountWorker(politeness: Politeness = FULL_SPEED): number | undefined {
  if (standby) return standby.started.child.pid;
  const env = { TIDEMARK_WORKER_STANDBY: '1' };
  const channel = descriptorChannel();
  const stdio = standbyStdio(channel?.worker ?? null);
  let started: Started;
  let tarRead: number | null;
  try {
    ({ started, tarRead } = tarPumpAvailable ? startWithTarPipe(politeness, stdio, env) : { started: start(politeness, stdio('pipe'), env), tarRead: null });
  } catch (err) {
    if (channel) closeQuietly(channel.root);
    throw err;
  } finally {
    if (channel) closeQuietly(channel.worker);
  }
  for (const h of handlesOf(started.child)) h.unref();
  const mine = { started, politeness, tarRead, channel: channel?.root ?? null };
  standby = mine;
  const forget = (): void => {
    if (standby !== mine) return;
    standby = null;
    if (mine.tarRead !== null) closeQuietly(mine.tarRead);
    if (mine.channel !== null) closeQuietly(mine.channel);
  };
  void started.closed.then(forget, forget);
  return started.child.pid;
}

/** The standby, if it can serve this request (and is still alive), taken out of standby. */
function takeStandby(job: Record<string, unknown>, politeness: Politeness, opts: { tarFd?: number | 'pipe' | 'fd'; stdin?: number }): typeof standby {
  const s = standby;
  if (!s || job.mode !== 'backup' || opts.stdin !== undefined || typeof opts.tarFd === 'number') return null;
  if (opts.tarFd === 'fd' && s.tarRead === null) return null;
  if ((!TAKES_POLITENESS && !samePoliteness(s.politeness, politeness)) || s.started.child.exitCode !== null) return null;
  standby = null;
  return s;
}

/**
 * Starts an account worker: it becomes the account and takes its politeness before touching
 * the home (see drop-privileges.ts, account-worker.ts). The root process only talks to it
 * through pipes.
 */
export function spawnAccountWorker(account: Account, job: Record<string, unknown>,
  opts: { politeness?: Politeness; tarFd?: number | 'pipe' | 'fd'; stdin?: number; descriptors?: boolean } = {}): WorkerHandle {
  if (account.uid === 0) throw new Error(`refusing to work on account ${account.username}: it has uid 0`);
  const politeness = opts.politeness ?? FULL_SPEED;
  const identity = `${account.username}:${account.uid}:${account.gid}`;
  let started: Started;
  let tar: Readable | null = null;
  let tarReadFd: number | null = null;
  let descriptorFd: number | null = null;
  const taken = takeStandby(job, politeness, opts);
  if (taken) {
    started = taken.started;
    for (const h of handlesOf(started.child)) h.ref();
    if (opts.tarFd === 'fd') tarReadFd = taken.tarRead;
    else if (opts.tarFd === 'pipe') tar = taken.tarRead !== null ? new net.Socket({ fd: taken.tarRead, readable: true, writable: false }) : started.child.stdio[4] as Readable;
    else if (taken.tarRead !== null) closeQuietly(taken.tarRead);
    if (opts.descriptors) descriptorFd = taken.channel;
    else if (taken.channel !== null) closeQuietly(taken.channel);
    const fullJob = { ...job, home: account.home, ...(descriptorFd !== null ? { descriptors: true } : {}) };
    started.child.stdin!.write(`${JSON.stringify({ identity, job: fullJob, ...(TAKES_POLITENESS ? { politeness } : {}) })}\n`);
  } else {
    const channel = opts.descriptors ? descriptorChannel() : null;
    const fullJob = { ...job, home: account.home, ...(channel ? { descriptors: true } : {}) };
    const stdin = opts.stdin ?? 'pipe';
    const stdio = (fd4?: number | 'pipe'): StdioOptions => {
      const base: StdioOptions = fd4 === undefined ? [stdin, 'ignore', 'pipe', 'pipe'] : [stdin, 'ignore', 'pipe', 'pipe', fd4];
      return channel ? [...base, ...(fd4 === undefined ? ['ignore' as const] : []), channel.worker] : base;
    };
    const env: Record<string, string> = { TIDEMARK_WORKER_IDENTITY: identity, TIDEMARK_WORKER_JOB: JSON.stringify(fullJob) };
    if (TAKES_POLITENESS) env.TIDEMARK_WORKER_POLITENESS = JSON.stringify(politeness);
    const flags = job.mode === 'restore' ? (job.contentFds ? DESCRIPTOR_RESTORE_FLAGS : RESTORE_FLAGS) : [];
    try {
      if (opts.tarFd === 'fd') {
        ({ started, tarRead: tarReadFd } = startWithTarPipe(politeness, stdio, env, flags));
      } else {
        started = start(politeness, stdio(opts.tarFd), env, flags);
      }
    } catch (err) {
      if (channel) closeQuietly(channel.root);
      throw err;
    } finally {
      if (channel) closeQuietly(channel.worker);
    }
    descriptorFd = channel?.root ?? null;
    if (opts.tarFd === 'pipe') tar = started.child.stdio[4] as Readable;
  }
  const { child } = started;
  const done = started.closed.then(({ code, signal }) => {
    if (code !== 0) throw new Error(`account worker for ${account.username} failed (${signal ?? `exit ${code}`}): ${started.stderr().trim() || 'no message'}`);
  });
  // Callers await `done` only once they have read the worker's output; a worker killed
  // meanwhile must not be an unhandled rejection (it would end the CLI or the daemon).
  done.catch(() => undefined);
  tar?.on('error', () => undefined);
  return { child, output: child.stdio[3] as Readable, tar, tarReadFd, descriptorFd, input: child.stdin!, done };
}
