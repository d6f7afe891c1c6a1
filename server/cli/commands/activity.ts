import type { Command } from 'commander';
import { UserError } from '../../services/context.js';
import { isCalendarDay } from '../../util/input-checks.js';
import { ROOT } from '../../services/actor.js';
import { ACCOUNT_NAME } from '../../engine/snapshot-layout.js';
import { printJson, printTable } from '../output.js';
import { actionAs } from '../common.js';

/** activity: the activity log. */
export function register(program: Command): void {
  program.command('activity').description('the activity log: who did what, when, with what result (an account holder sees what concerns its own account)')
    .option('--since <date>', 'only entries from this day (YYYY-MM-DD) or moment (ISO 8601) on')
    .option('--reseller <name>', 'what this reseller sees (root only)')
    .option('--csv', 'print CSV (cells never start a spreadsheet formula)')
    .action(actionAs(async (ctx, json, who, opts: { since?: string; reseller?: string; csv?: boolean }) => {
      if (who.owner !== undefined) throw new UserError('--owner does not apply to activity', 'invalid-input');
      let since = new Date(0);
      if (opts.since !== undefined) {
        const day = /^\d{4}-\d{2}-\d{2}$/.test(opts.since);
        since = new Date(day ? `${opts.since}T00:00:00Z` : opts.since);
        if (Number.isNaN(since.getTime()) || !isCalendarDay(opts.since)) throw new UserError(`--since: "${opts.since}" is not a date (YYYY-MM-DD or ISO 8601)`, 'invalid-input');
      }
      let actor = who.actor;
      if (opts.reseller !== undefined) {
        if (actor !== ROOT) throw new UserError('--reseller is for root only', 'invalid-input');
        if (!ACCOUNT_NAME.test(opts.reseller) || opts.reseller === 'root') throw new UserError(`--reseller: "${opts.reseller}" is not a reseller name`, 'invalid-input');
        actor = { name: opts.reseller, role: 'reseller' };
      }
      if (opts.csv && json) throw new UserError('--csv and --json: choose one', 'invalid-input');
      const { activitySince } = await import('../../services/activity.js');
      const entries = await activitySince(ctx, since, actor);
      if (opts.csv) {
        const { activityCsv } = await import('../../store/activity.js');
        process.stdout.write(activityCsv(entries));
      } else if (json) printJson(entries);
      else printTable(entries.map((a) => ({ ...a, when: a.at })), ['when', 'actor', 'role', 'action', 'target', 'result', 'detail']);
    }));
}
