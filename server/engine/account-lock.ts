import fs from 'node:fs';
import path from 'node:path';
import { isProcessAlive } from '../util/process-alive.js';

/** The account is locked by a task that is running (here or in another live process). */
export class AccountBusyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AccountBusyError';
  }
}

/** Lock files this process holds: the daemon runs several tasks, and its own lock is not stale. */
const heldHere = new Map<string, string>();

/**
 * One backup, restore or pruning at a time per account, across processes (daemon and
 * CLI) and within one. The lock is a file holding the owner's pid; a lock left by a
 * killed process (or by an earlier process whose pid was reused) is taken over.
 */
export function lockAccount(dataDir: string, account: string, what: string): () => void {
  const dir = path.join(dataDir, 'locks');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `${account}.lock`);
  const mine = heldHere.get(file);
  if (mine !== undefined) throw new AccountBusyError(`account ${account} is busy: ${mine} is running`);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      fs.writeFileSync(file, JSON.stringify({ pid: process.pid, what, at: new Date().toISOString() }), { flag: 'wx', mode: 0o600 });
      heldHere.set(file, what);
      return () => {
        heldHere.delete(file);
        fs.rmSync(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let holder: { pid?: number; what?: string } = {};
      try { holder = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof holder; } catch { /* unreadable: stale */ }
      if (holder.pid && holder.pid !== process.pid && isProcessAlive(holder.pid)) {
        throw new AccountBusyError(`account ${account} is busy: ${holder.what ?? 'another task'} is running (pid ${holder.pid})`);
      }
      fs.rmSync(file, { force: true });
    }
  }
  throw new Error(`could not lock account ${account}`);
}

/**
 * lockAccount, waiting while the account is busy with work outside the queue (pruning,
 * reindexing, a rename), for at most `timeoutMs`; aborting the signal stops the wait.
 */
export async function lockAccountWhenFree(dataDir: string, account: string, what: string, signal?: AbortSignal, timeoutMs = 30 * 60_000): Promise<() => void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    try {
      return lockAccount(dataDir, account, what);
    } catch (err) {
      if (!(err instanceof AccountBusyError) || Date.now() > until) throw err;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
