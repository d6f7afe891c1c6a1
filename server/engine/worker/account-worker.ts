// Entry point of the account worker process. Nothing touches the home before becomeAccount
// and takePoliteness.
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { becomeAccount } from './drop-privileges.js';
import { applyMallocPolicy } from '../../native/malloc-policy.js';
import { batchHelperThreads } from '../../native/sched-batch.js';
import { endProcess } from '../../native/exit-now.js';
import { parsePoliteness, takePoliteness, type Politeness } from '../../util/politeness.js';

interface WorkerJob {
  mode: 'backup' | 'restore' | 'sites';
  home: string;
  excludes?: string[];
  previous?: boolean;
  tar?: boolean;
  /** Backup: large files go to root as descriptors over fd 5 (backup-reader.ts). */
  descriptors?: boolean;
  intoFolder?: string;
  prune?: { roots: string[]; keep: string[]; aside: string };
  contentChecked?: boolean;
  remoteContent?: boolean;
  contentFds?: 'blobs' | 'archive' | 'compressed';
  snapshot?: string;
}

/**
 * What root sends a standby worker first: the account to become, the job, and the politeness
 * to take (absent where root started the worker under it already), one JSON line.
 */
export interface StandbyHeader { identity: string; job: WorkerJob; politeness?: Politeness }

const MAX_HEADER = 1 << 20;

/**
 * The first line of `input` (without its newline); what follows stays in the stream. null
 * when the stream ends first: root went away without needing this worker.
 */
function firstLine(input: Readable): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let length = 0;
    const settle = (fn: () => void): void => {
      input.off('readable', onReadable); input.off('end', onEnd); input.off('error', onError);
      fn();
    };
    const onEnd = (): void => settle(() => resolve(null));
    const onError = (err: Error): void => settle(() => reject(err));
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while ((chunk = input.read() as Buffer | null) !== null) {
        const nl = chunk.indexOf(10);
        if (nl < 0) {
          parts.push(chunk);
          length += chunk.length;
          if (length > MAX_HEADER) { settle(() => reject(new Error('standby header too long'))); return; }
          continue;
        }
        const line = Buffer.concat([...parts, chunk.subarray(0, nl)]);
        settle(() => {
          if (nl + 1 < chunk!.length) input.unshift(chunk!.subarray(nl + 1));
          resolve(line);
        });
        return;
      }
    };
    input.on('readable', onReadable);
    input.on('end', onEnd);
    input.on('error', onError);
  });
}

/**
 * The politeness root asked for (null: none, the worker was started under it), taken by every
 * thread once the job's modules are loaded and before the home is read: a worker's Node
 * start-up and module loading read nothing of the account's, and at nice 10 on a busy machine
 * they were the slowest part of a small backup. The helper threads go under SCHED_BATCH
 * (sched-batch.ts) only then too: the ES module loader reads each module through libuv's
 * pool, one round trip after another, and a batch pool thread waits for the processor on a
 * busy machine.
 */
function settle(politeness: Politeness | null): void {
  if (politeness) takePoliteness(politeness);
  batchHelperThreads();
}

async function runJob(job: WorkerJob, politeness: Politeness | null, input: Readable | undefined): Promise<void> {
  // Each mode loads only its own modules: a worker starts per account and task.
  if (job.mode === 'backup') {
    const { runBackupReader } = await import('./backup-reader.js');
    settle(politeness);
    await runBackupReader({ home: job.home, excludes: job.excludes ?? [], previous: job.previous ?? false, tar: job.tar ?? false, descriptors: job.descriptors === true, ...(input ? { input } : {}) });
  } else if (job.mode === 'sites') {
    const { runSiteFinder } = await import('../sites/find-sites.js');
    settle(politeness);
    runSiteFinder({ home: job.home, excludes: job.excludes ?? [] });
  } else if (job.mode === 'restore') {
    const { runRestoreWriter } = await import('./restore-writer.js');
    settle(politeness);
    await runRestoreWriter({ home: job.home, intoFolder: job.intoFolder ?? '', ...(job.prune ? { prune: job.prune } : {}), contentChecked: job.contentChecked === true, ...(job.remoteContent ? { remoteContent: true } : {}), ...(job.contentFds ? { contentFds: job.contentFds } : {}), ...(job.snapshot ? { snapshot: job.snapshot } : {}) });
  } else {
    throw new Error(`unknown worker mode ${String(job.mode)}`);
  }
}

/**
 * A standby backup worker (spawn-worker.ts, prestartAccountWorker) is started before root
 * knows the account: its Node start-up and module loading overlap root's own. It loads the
 * backup reader's modules (root's own code, which touches nothing) while it waits, becomes
 * the account as soon as root names it, and only then reads the home.
 */
async function standby(): Promise<void> {
  const input = fs.createReadStream('', { fd: 0, highWaterMark: 1 << 20 });
  const preload = import('./backup-reader.js');
  preload.catch(() => undefined);
  warmAccountLookups();
  const line = await firstLine(input);
  if (line === null) return;
  const header = JSON.parse(line.toString('utf8')) as StandbyHeader;
  becomeAccount(header.identity);
  if (header.job.mode !== 'backup') throw new Error('a standby worker only backs up');
  const politeness = header.politeness === undefined ? null : parsePoliteness(header.politeness);
  await preload;
  await runJob(header.job, politeness, input);
}

/**
 * The C library's name service, loaded while the standby waits: its first use (nsswitch.conf,
 * libnss_systemd and the libraries it loads, nscd's socket tried) is otherwise paid by
 * becomeAccount's group lookup, after root has named the account. A group name that cannot
 * exist (':' separates the fields of /etc/group) goes through every service, which all load,
 * and fails: nothing changes. An account's entries are not read.
 */
function warmAccountLookups(): void {
  const egid = process.getegid!();
  try {
    process.setegid!('tidemark:warm-up');
  } catch {
    // expected: no such group
  }
  if (process.getegid!() !== egid) process.setegid!(egid);
}

async function main(): Promise<void> {
  // Before the previous index or any content is read (see malloc-policy.ts).
  applyMallocPolicy();
  if (process.env.TIDEMARK_WORKER_STANDBY === '1') return standby();
  becomeAccount(process.env.TIDEMARK_WORKER_IDENTITY);
  const politeness = process.env.TIDEMARK_WORKER_POLITENESS;
  await runJob(JSON.parse(process.env.TIDEMARK_WORKER_JOB ?? '{}') as WorkerJob, politeness === undefined ? null : parsePoliteness(JSON.parse(politeness)), undefined);
}

// Without what process.exit still tears down (exit-now.ts): root waits for this process to end.
main().then(() => endProcess(0), (err: unknown) => {
  process.stderr.write(`${(err as Error).message ?? String(err)}\n`);
  endProcess(1);
});
