// Entry point of the account worker process. The first import drops root for the account.
import './drop-privileges.js';
import { runBackupReader } from './backup-reader.js';
import { runRestoreWriter } from './restore-writer.js';
import { runSiteFinder } from '../sites/find-sites.js';

interface WorkerJob {
  mode: 'backup' | 'restore' | 'sites';
  home: string;
  excludes?: string[];
  previous?: boolean;
  tar?: boolean;
  intoFolder?: string;
  prune?: { roots: string[]; keep: string[]; aside: string };
  contentChecked?: boolean;
}

async function main(): Promise<void> {
  const job = JSON.parse(process.env.TIDEMARK_WORKER_JOB ?? '{}') as WorkerJob;
  if (job.mode === 'backup') {
    await runBackupReader({ home: job.home, excludes: job.excludes ?? [], previous: job.previous ?? false, tar: job.tar ?? false });
  } else if (job.mode === 'sites') {
    runSiteFinder({ home: job.home, excludes: job.excludes ?? [] });
  } else if (job.mode === 'restore') {
    await runRestoreWriter({ home: job.home, intoFolder: job.intoFolder ?? '', ...(job.prune ? { prune: job.prune } : {}), contentChecked: job.contentChecked === true });
  } else {
    throw new Error(`unknown worker mode ${String(job.mode)}`);
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  process.stderr.write(`${(err as Error).message ?? String(err)}\n`);
  process.exit(1);
});
