import type { Command } from 'commander';
import { getJob } from '../../services/jobs.js';
import { applyRetention } from '../../services/retention.js';
import { printJson } from '../output.js';
import { action } from '../common.js';

/** retention: remove the snapshots that schedules no longer keep. */
export function register(program: Command): void {
  program.command('retention').description('remove the snapshots that schedules no longer keep (the daemon does it after each scheduled run)')
    .option('--job <name>', 'only this job')
    .option('--dry-run', 'show what would be removed, remove nothing')
    .action(action(async (ctx, json, opts: { job?: string; dryRun?: boolean }) => {
      const jobIds = opts.job !== undefined ? [getJob(ctx, opts.job).id] : undefined;
      const r = await applyRetention(ctx, { ...(jobIds ? { jobIds } : {}), dryRun: Boolean(opts.dryRun) });
      if (json) printJson(r);
      else {
        for (const x of r.removed) process.stdout.write(`${opts.dryRun ? 'would remove' : 'removed'} ${x.destination}:${x.account}/${x.id} (${x.schedule})\n`);
        for (const x of r.skipped) process.stderr.write(`skipped ${x.destination}:${x.account}: ${x.reason}\n`);
        for (const x of r.failed) process.stderr.write(`failed ${x.destination}:${x.account}/${x.id}: ${x.error}\n`);
      }
      if (r.failed.length) process.exitCode = 1;
    }));
}
