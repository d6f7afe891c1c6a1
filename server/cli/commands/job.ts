import { Option, type Command } from 'commander';
import { addJob, addSchedule, describeJob, describeSchedule, editSchedule, getJob, listJobs, listSchedules, removeJob, removeSchedule, setManualKeep } from '../../services/jobs.js';
import { ITEMS, STRUCTURES } from '../../store/jobs.js';
import { SCHEDULE_KINDS } from '../../store/schedules.js';
import { printJson, printRecord, printTable } from '../output.js';
import { countOrAll, listOf, timeOfDay, wholeNumber } from '../option-values.js';
import { actionAs, collect } from '../common.js';

/** job and job schedule: what to back up, where, how and when. */
export function register(program: Command): void {
  const job = program.command('job').description('what to back up, where and how');
  job.command('add')
    .requiredOption('--name <name>')
    .requiredOption('--destination <name>')
    .addOption(new Option('--structure <structure>', 'incremental | archive | compressed').choices(STRUCTURES).makeOptionMandatory())
    .option('--accounts <list>', 'comma-separated account names')
    .option('--all', 'every account')
    .option('--items <list>', 'comma-separated: files,databases,database-users (default: all)', listOf(ITEMS))
    .option('--exclude <glob>', 'exclude paths matching the glob (repeatable)', collect, [])
    .action(actionAs(async (ctx, json, who, opts: { name: string; destination: string; structure: string; accounts?: string; all?: boolean; items?: string[]; exclude: string[] }) => {
      const j = await addJob(ctx, {
        name: opts.name, destination: opts.destination, structure: opts.structure, all: Boolean(opts.all),
        ...(opts.accounts !== undefined ? { accounts: opts.accounts.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
        ...(opts.items !== undefined ? { items: opts.items } : {}),
        excludes: opts.exclude,
      }, who.actor, who.owner);
      if (json) printJson(describeJob(ctx, j)); else process.stdout.write(`job "${j.name}" added\n`);
    }));
  job.command('list').action(actionAs(async (ctx, json, who) => {
    const docs = listJobs(ctx, who.actor).map((j) => describeJob(ctx, j));
    if (json) printJson(docs); else printTable(docs, ['name', 'owner', 'destination', 'structure', 'accounts', 'items', 'excludes']);
  }));
  job.command('show').argument('<name>').action(actionAs(async (ctx, json, who, name: string) => {
    const doc = describeJob(ctx, getJob(ctx, name, who.actor, who.owner));
    if (json) printJson(doc); else printRecord(doc);
  }));
  job.command('remove').argument('<name>').action(actionAs(async (ctx, json, who, name: string) => {
    const j = removeJob(ctx, name, who.actor, who.owner);
    if (json) printJson({ removed: j.name }); else process.stdout.write(`job "${j.name}" removed\n`);
  }));

  const schedule = job.command('schedule').description('when a job runs, and how many snapshots each schedule keeps');
  schedule.command('add').argument('<job>')
    .addOption(new Option('--kind <kind>', 'every5min | every10min | every15min | every30min (incremental jobs only) | hourly | daily | weekly | monthly | after').choices(SCHEDULE_KINDS).makeOptionMandatory())
    .requiredOption('--keep <n>', 'keep the newest N snapshots of this schedule', wholeNumber(1, 1_000_000))
    .option('--at <HH:MM>', 'local time (hourly: 00:MM, the minute of each hour; default 00:00)', timeOfDay)
    .option('--weekday <0-6>', 'weekly: 0 Sunday … 6 Saturday', wholeNumber(0, 6))
    .option('--monthday <1-28>', 'monthly: day of the month', wholeNumber(1, 28))
    .option('--after-job <name>', "after: run when this job's scheduled run finishes")
    .option('--name <name>', 'name of the schedule (default: the kind); its snapshots carry it')
    .action(actionAs(async (ctx, json, who, jobName: string, opts: { kind: string; keep: number; at?: string; weekday?: number; monthday?: number; afterJob?: string; name?: string }) => {
      const s = await addSchedule(ctx, jobName, {
        kind: opts.kind, keep: opts.keep, ...(opts.at !== undefined ? { at: opts.at } : {}), ...(opts.weekday !== undefined ? { weekday: opts.weekday } : {}),
        ...(opts.monthday !== undefined ? { monthday: opts.monthday } : {}), ...(opts.afterJob !== undefined ? { afterJob: opts.afterJob } : {}),
        ...(opts.name !== undefined ? { name: opts.name } : {}),
      }, who.actor, who.owner);
      if (json) printJson(describeSchedule(ctx, s)); else process.stdout.write(`schedule "${s.name}" added to job "${jobName}"\n`);
    }));
  schedule.command('list').argument('<job>').action(actionAs(async (ctx, json, who, jobName: string) => {
    const r = listSchedules(ctx, jobName, who.actor, who.owner);
    const docs = r.schedules.map((s) => describeSchedule(ctx, s));
    if (json) printJson({ job: r.job.name, manualKeep: r.manualKeep, schedules: docs });
    else {
      printTable(docs, ['name', 'kind', 'at', 'weekday', 'monthday', 'afterJob', 'keep', 'lastRunAt', 'nextRunAt']);
      process.stdout.write(`on demand: keep ${r.manualKeep ?? 'all'}\n`);
    }
  }));
  schedule.command('remove').argument('<job>').argument('<name>').action(actionAs(async (ctx, json, who, jobName: string, name: string) => {
    const s = removeSchedule(ctx, jobName, name, who.actor, who.owner);
    if (json) printJson({ removed: s.name, job: jobName }); else process.stdout.write(`schedule "${s.name}" removed from job "${jobName}" (its snapshots stay)\n`);
  }));
  schedule.command('manual').argument('<job>').description('how many snapshots taken on demand the job keeps')
    .requiredOption('--keep <n>', 'a number, or "all"', countOrAll)
    .action(actionAs(async (ctx, json, who, jobName: string, opts: { keep: number | 'all' }) => {
      const keep = opts.keep === 'all' ? null : opts.keep;
      const j = setManualKeep(ctx, jobName, keep, who.actor, who.owner);
      if (json) printJson({ job: j.name, manualKeep: keep }); else process.stdout.write(`job "${j.name}" keeps ${keep ?? 'all'} snapshots taken on demand\n`);
    }));

  schedule.command('edit').argument('<job>').argument('<name>').description('change a schedule\'s timing or retention (its name stays)')
    .addOption(new Option('--kind <kind>', 'every5min | every10min | every15min | every30min (incremental jobs only) | hourly | daily | weekly | monthly | after').choices(SCHEDULE_KINDS))
    .option('--keep <n>', 'keep the newest N snapshots of this schedule', wholeNumber(1, 1_000_000))
    .option('--at <HH:MM>', 'local time', timeOfDay)
    .option('--weekday <0-6>', 'weekly: 0 Sunday … 6 Saturday', wholeNumber(0, 6))
    .option('--monthday <1-28>', 'monthly: day of the month', wholeNumber(1, 28))
    .option('--after-job <name>')
    .action(actionAs(async (ctx, json, who, jobName: string, name: string, opts: { kind?: string; keep?: number; at?: string; weekday?: number; monthday?: number; afterJob?: string }) => {
      const changes = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
      const s = await editSchedule(ctx, jobName, name, changes, who.actor, who.owner);
      if (json) printJson(describeSchedule(ctx, s)); else process.stdout.write(`schedule "${s.name}" of job "${jobName}" changed\n`);
    }));
}
