import type { Command } from 'commander';
import { UserError } from '../../services/context.js';
import { downloadSiteToFile, listSites, restoreSite, restoreSiteAt } from '../../services/sites.js';
import { parseMoment } from '../../services/point-in-time.js';
import { humanBytes, printJson } from '../output.js';
import { localFile } from '../option-values.js';
import { actionAs, type Who } from '../common.js';

/** The account a site command is about: an account holder's own, or the one the provider names. */
function accountOf(who: Who, account: string | undefined): string {
  if (who.actor.role === 'user') {
    if (account !== undefined && account !== who.actor.name) throw new UserError(`--account: only ${who.actor.name}'s sites can be reached`, 'invalid-input');
    return who.actor.name;
  }
  if (account === undefined) throw new UserError('--account: which account (required for the provider)', 'invalid-input');
  return account;
}

/** site list | restore | download: an account's WordPress sites, as its snapshots recorded them. */
export function register(program: Command): void {
  const site = program.command('site').description('WordPress sites of an account (found when a snapshot with files and databases was taken)');

  site.command('list')
    .option('--account <name>', 'the account (an account holder: its own)')
    .action(actionAs(async (ctx, json, who, opts: { account?: string }) => {
      const sites = await listSites(ctx, accountOf(who, opts.account), who.actor);
      if (json) { printJson(sites); return; }
      if (sites.length === 0) process.stdout.write('no WordPress sites recorded in the snapshots (they are looked for when a job backs up files and databases)\n');
      for (const s of sites) {
        const what = s.database ? `database ${s.database}, tables ${s.prefix}*` : 'database unknown';
        const newest = s.snapshots.find((x) => x.restorable);
        process.stdout.write(`${s.folder}: ${what}; ${s.snapshotCount} snapshot(s)${newest ? `, newest restorable ${newest.id} (${newest.finishedAt})` : ''}\n`);
        if (s.problem) process.stdout.write(`  not restorable as a site: ${s.problem}\n`);
      }
    }));

  site.command('restore')
    .description('restore a site to a snapshot, or to a moment (--at): its folder and its tables (those with its prefix), nothing else')
    .requiredOption('--folder <path>', "the site's folder, as site list shows it")
    .option('--account <name>', 'the account (an account holder: its own)')
    .option('--snapshot <id>', 'the snapshot (default: the newest that holds the site)')
    .option('--at <moment>', 'a moment (2026-11-30T14:31:00Z): tables as of then (binary logs), files from the newest snapshot before it')
    .option('--destination <name>')
    .action(actionAs(async (ctx, json, who, opts: { folder: string; account?: string; snapshot?: string; destination?: string; at?: string }) => {
      if (opts.at !== undefined) {
        if (opts.snapshot !== undefined || opts.destination !== undefined) throw new UserError('--at: give a moment or a --snapshot, not both', 'invalid-input');
        const r = await restoreSiteAt(ctx, { account: accountOf(who, opts.account), folder: opts.folder, moment: parseMoment(opts.at) }, who.actor);
        if (json) { printJson(r); return; }
        process.stdout.write(`restored site ${opts.folder} to ${r.moment} (task ${r.task}): files from snapshot ${r.filesFrom}, ${r.site?.tables.length ?? 0} tables as of the moment\n`);
        for (const w of r.databaseWarnings) process.stderr.write(`warning: ${w}\n`);
        return;
      }
      const r = await restoreSite(ctx, {
        account: accountOf(who, opts.account), folder: opts.folder,
        ...(opts.snapshot !== undefined ? { snapshot: opts.snapshot } : {}), ...(opts.destination !== undefined ? { destination: opts.destination } : {}),
      }, who.actor);
      if (json) { printJson(r); return; }
      process.stdout.write(`restored site ${opts.folder} from snapshot ${r.snapshot} (task ${r.task}): ${r.files?.files ?? 0} files`);
      process.stdout.write(r.site ? `, ${r.site.tables.length} tables of ${r.site.database} (${r.site.prefix}*)${r.site.removedTables.length ? `, ${r.site.removedTables.length} newer tables removed` : ''}\n` : '\n');
      for (const w of r.files?.warnings ?? []) process.stderr.write(`warning: ${w.path}: ${w.message}\n`);
      for (const w of r.databaseWarnings) process.stderr.write(`warning: ${w}\n`);
    }));

  site.command('download')
    .description("one .tar.gz of a site: its files and a dump of its tables, for moving it elsewhere")
    .requiredOption('--folder <path>', "the site's folder, as site list shows it")
    .requiredOption('--out <file>', 'where to write the .tar.gz', localFile)
    .option('--account <name>', 'the account (an account holder: its own)')
    .option('--snapshot <id>', 'the snapshot (default: the newest that holds the site)')
    .option('--destination <name>')
    .action(actionAs(async (ctx, json, who, opts: { folder: string; out: string; account?: string; snapshot?: string; destination?: string }) => {
      const r = await downloadSiteToFile(ctx, {
        account: accountOf(who, opts.account), folder: opts.folder, out: opts.out,
        ...(opts.snapshot !== undefined ? { snapshot: opts.snapshot } : {}), ...(opts.destination !== undefined ? { destination: opts.destination } : {}),
      }, who.actor);
      if (json) printJson(r); else process.stdout.write(`wrote ${r.out} from snapshot ${r.snapshot}: ${r.files} files, ${humanBytes(r.bytes)}\n`);
    }));
}
