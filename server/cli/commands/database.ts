import type { Command } from 'commander';
import { UserError } from '../../services/context.js';
import { databaseWindow, parseMoment, previewDatabaseAt, restoreDatabaseAtMoment } from '../../services/point-in-time.js';
import { printJson } from '../output.js';
import { actionAs, collect } from '../common.js';

interface AtOptions { account: string; at: string; table: string[]; as?: string; asNewTables?: boolean }

/** database: a database (or some of its tables) as it was at a moment. */
export function register(program: Command): void {
  const db = program.command('database').description('point-in-time: a database or tables as they were at any second of the covered window');

  db.command('window').description('the moments a database can be restored to')
    .argument('<database>')
    .requiredOption('--account <name>')
    .action(actionAs(async (ctx, json, who, database: string, opts: { account: string }) => {
      const w = await databaseWindow(ctx, who.actor, opts.account, database);
      if (json) { printJson(w); return; }
      if (!w.logBin) process.stdout.write(`binary logging is off: no point-in-time restore.\n${w.advice ?? ''}\n`);
      else if (!w.from) process.stdout.write(`${database}: no moment is covered yet (a dump taken while binary logging is on, and the logs since, are needed)\n`);
      else process.stdout.write(`${database}: you can go back to any second between ${w.from} and ${w.to} (logs are shipped every ${w.intervalMinutes} min)\n`);
      for (const g of w.gaps) process.stdout.write(`gap: logs missing between ${g.after} and ${g.before}\n`);
    }));

  db.command('preview').description('rows per table now and at the moment (nothing is changed)')
    .argument('<database>')
    .requiredOption('--account <name>')
    .requiredOption('--at <time>', 'ISO date and time, e.g. 2026-11-30T14:31:00Z')
    .option('--table <name>', 'only this table (repeatable)', collect, [])
    .action(actionAs(async (ctx, json, who, database: string, opts: AtOptions) => {
      const r = await previewDatabaseAt(ctx, who.actor, { account: opts.account, database, at: parseMoment(opts.at), ...(opts.table.length ? { tables: opts.table } : {}) });
      if (json) { printJson(r); return; }
      process.stdout.write(`${database} at ${r.moment} (from snapshot ${r.snapshot}):\n`);
      for (const t of r.tables) process.stdout.write(`  ${t.table}: ${t.rowsNow ?? '-'} rows now, ${t.rowsAt ?? '-'} then\n`);
      for (const s of r.skipped) process.stderr.write(`warning: ${s}\n`);
    }));

  db.command('restore').description('restore the database (or --table) as it was at --at')
    .argument('<database>')
    .requiredOption('--account <name>')
    .requiredOption('--at <time>', 'ISO date and time, e.g. 2026-11-30T14:31:00Z')
    .option('--table <name>', 'only this table (repeatable); the others are not touched', collect, [])
    .option('--as <database>', 'write into this database of the account instead')
    .option('--as-new-tables', 'with --table: write <table>_restored_<time> beside the current tables')
    .option('--yes', 'needed: the restore overwrites what it restores')
    .action(actionAs(async (ctx, json, who, database: string, opts: AtOptions & { yes?: boolean }) => {
      if (!opts.yes && !opts.asNewTables && !opts.as) throw new UserError('this overwrites the database or tables: add --yes (or restore --as another database, or --as-new-tables)', 'invalid-input');
      const r = await restoreDatabaseAtMoment(ctx, who.actor, {
        account: opts.account, database, at: parseMoment(opts.at),
        ...(opts.table.length ? { tables: opts.table } : {}), ...(opts.as ? { into: opts.as } : {}), asNewTables: Boolean(opts.asNewTables),
      });
      if (json) { printJson(r); return; }
      process.stdout.write(`restored ${database}${r.into !== database ? ` into ${r.into}` : ''} as of ${r.moment} (snapshot ${r.snapshot}, ${r.transactions} transactions replayed; task ${r.task})\n`);
      for (const t of r.tables) if (t.restoredAs !== t.table) process.stdout.write(`  ${t.table} → ${t.restoredAs}\n`);
      for (const s of r.skipped) process.stderr.write(`warning: not replayed: ${s}\n`);
    }));
}
