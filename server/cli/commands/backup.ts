import { Option, type Command } from 'commander';
import { runBackup } from '../../services/backups.js';
import { isPriorityName, PRIORITIES } from '../../queue/priority.js';
import { humanBytes, printJson } from '../output.js';
import { actionAs } from '../common.js';

/** backup: run a job now. */
export function register(program: Command): void {
  program.command('backup')
    .description('run a job now')
    .requiredOption('--job <name>')
    .option('--account <user>', 'only this account of the job')
    .option('--wait', 'wait until it is done (the CLI always waits; the JSON API can start a run and return at once)')
    .addOption(new Option('--priority <level>', 'place in the queue').choices(Object.keys(PRIORITIES)).default('normal'))
    .action(actionAs(async (ctx, json, who, opts: { job: string; account?: string; priority: string }) => {
      const priority = isPriorityName(opts.priority) ? PRIORITIES[opts.priority] : PRIORITIES.normal;
      const results = await runBackup(ctx, opts.job, opts.account, who.actor, who.owner, { priority });
      if (json) printJson({ snapshots: results.filter((r) => r.snapshot).map((r) => r.snapshot), results });
      else {
        for (const r of results) {
          if (r.snapshot) process.stdout.write(`${r.snapshot}  ${r.account}  ${r.status}  ${r.files} files, ${humanBytes(r.bytes)} (${humanBytes(r.storedBytes)} stored)${r.skipped ? `, ${r.skipped} skipped` : ''}\n`);
          else process.stderr.write(`${r.account}: ${r.status}: ${r.error}\n`);
        }
      }
      if (results.some((r) => r.status === 'failed' || r.status === 'cancelled')) process.exitCode = 1;
    }));
}
