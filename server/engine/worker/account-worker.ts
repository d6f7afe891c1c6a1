// Entry point of the account worker process. The first import drops root for the account.
import './drop-privileges.js';

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
  // Each mode loads only its own modules (after the drop above): a worker starts per account and task.
  if (job.mode === 'backup') {
    const { runBackupReader } = await import('./backup-reader.js');
    await runBackupReader({ home: job.home, excludes: job.excludes ?? [], previous: job.previous ?? false, tar: job.tar ?? false });
  } else if (job.mode === 'sites') {
    const { runSiteFinder } = await import('../sites/find-sites.js');
    runSiteFinder({ home: job.home, excludes: job.excludes ?? [] });
  } else if (job.mode === 'restore') {
    const { runRestoreWriter } = await import('./restore-writer.js');
    await runRestoreWriter({ home: job.home, intoFolder: job.intoFolder ?? '', ...(job.prune ? { prune: job.prune } : {}), contentChecked: job.contentChecked === true });
  } else {
    throw new Error(`unknown worker mode ${String(job.mode)}`);
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  process.stderr.write(`${(err as Error).message ?? String(err)}\n`);
  process.exit(1);
});
