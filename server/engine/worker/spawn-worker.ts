import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import type { Account } from '../../panels/types.js';
import { FULL_SPEED, politely, type Politeness } from '../../util/politeness.js';

const WORKER = fileURLToPath(new URL('./account-worker.js', import.meta.url));

export interface WorkerHandle {
  child: ChildProcess;
  /** Entry stream or result from the worker (its fd 3). */
  output: Readable;
  /** The worker's fd 4 when it was asked for as a pipe (tar stream). */
  tar: Readable | null;
  input: Writable;
  /** Resolves when the worker exits with 0; rejects with its stderr otherwise. */
  done: Promise<void>;
}

/**
 * Starts an account worker: it becomes the account before touching the home (see
 * drop-privileges.ts). The root process only talks to it through pipes.
 */
export function spawnAccountWorker(account: Account, job: Record<string, unknown>, opts: { politeness?: Politeness; tarFd?: number | 'pipe' } = {}): WorkerHandle {
  if (account.uid === 0) throw new Error(`refusing to work on account ${account.username}: it has uid 0`);
  const { command, args } = politely(opts.politeness ?? FULL_SPEED, process.execPath, [WORKER]);
  const child = spawn(command, args, {
    stdio: opts.tarFd === undefined ? ['pipe', 'ignore', 'pipe', 'pipe'] : ['pipe', 'ignore', 'pipe', 'pipe', opts.tarFd],
    cwd: '/',
    env: {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      LANG: 'C.UTF-8',
      TIDEMARK_WORKER_IDENTITY: `${account.username}:${account.uid}:${account.gid}`,
      TIDEMARK_WORKER_JOB: JSON.stringify({ ...job, home: account.home }),
    },
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => { if (stderr.length < 65536) stderr += d; });
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`account worker for ${account.username} failed (${signal ?? `exit ${code}`}): ${stderr.trim() || 'no message'}`));
    });
  });
  // Callers await `done` only once they have read the worker's output; a worker killed
  // meanwhile must not be an unhandled rejection (it would end the CLI or the daemon).
  done.catch(() => undefined);
  // Errors surface through `done`; a closed pipe alone must not crash the root process.
  for (const s of [child.stdio[3], child.stdio[4]]) (s as Readable | null)?.on('error', () => undefined);
  child.stdin!.on('error', () => undefined);
  return { child, output: child.stdio[3] as Readable, tar: opts.tarFd === 'pipe' ? child.stdio[4] as Readable : null, input: child.stdin!, done };
}
