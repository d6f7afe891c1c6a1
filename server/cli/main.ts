#!/usr/bin/env node
import fs from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { openContext, UserError, type Context } from '../services/context.js';
import {
  addDestination, browseDestination, describeDestination, getDestination, listDestinations, removeDestination, setEnabled, setSnapshotsVisible, validateDestination,
  type AddDestinationInput,
} from '../services/destinations.js';
import { editDestination, type EditDestinationInput } from '../services/destinations.js';
import { reindexDestination } from '../services/reindex.js';
import { addJob, describeJob, getJob, listJobs, removeJob } from '../services/jobs.js';
import { runBackup } from '../services/backups.js';
import { addSchedule, describeSchedule, editSchedule, listSchedules, removeSchedule, setManualKeep } from '../services/jobs.js';
import { applyRetention, setSnapshotLocked } from '../services/retention.js';
import { deleteSnapshot, setSnapshotNote } from '../services/snapshots.js';
import { describeEntry, describeSnapshot, download, findSnapshot, listSnapshots, restore, snapshotFiles, snapshotManifest } from '../services/snapshots.js';
import { ROOT, type Actor } from '../services/actor.js';
import { cancelTask, describeTask, getTask, listTasks, waitForEnd } from '../services/tasks.js';
import { isPriorityName, PRIORITIES } from '../queue/priority.js';
import { ACCOUNT_NAME } from '../engine/snapshot-layout.js';
import {
  eventFromArguments, eventFromCpanelHook, eventFromDirectAdminEnv, handlePanelEvent, isPanelEventKind, PANEL_EVENTS, type PanelEvent,
} from '../services/panel-events.js';
import type { BytePath } from '../util/byte-path.js';
import { clipEchoedInput, humanBytes, printJson, printRecord, printTable, progressText } from './output.js';
import { countOrAll, folderBase64, folderPath, homePath, homePathBase64, listOf, localFile, seconds, timeOfDay, wholeNumber } from './option-values.js';
import { ITEMS, STRUCTURES } from '../store/jobs.js';
import { SCHEDULE_KINDS } from '../store/schedules.js';
import { identify } from '../services/account-identity.js';
import { RETIRED_OWNER } from '../store/accounts.js';
import { verifyDestination, verifySnapshot, type SnapshotVerifyReport } from '../services/verify.js';

/** One snapshot's verification in a few lines: its result, then each damaged file. */
function printVerifyReport(r: SnapshotVerifyReport): void {
  const what = `${r.checked.files} files, ${humanBytes(r.checked.bytes)}, ${r.checked.databases} databases read`;
  process.stdout.write(`snapshot ${r.snapshot} of ${r.account}: ${r.result === 'damaged' ? 'DAMAGED' : r.result} (${what}; task ${r.task})\n`);
  for (const d of r.damaged) process.stderr.write(`damaged: ${r.snapshot}: ${d.file}${d.path !== undefined ? ` (${d.path})` : ''}: ${d.problem}\n`);
}

/** --sample: a percentage; anything else is a malformed command line (exit 2). */
const toPercent = (v: string): number => {
  const n = /^\d+(\.\d+)?$/.test(v) ? Number(v) : Number.NaN;
  if (!(n > 0 && n <= 100)) throw new UserError(`--sample: "${v.slice(0, 40)}" is not a percentage above 0 and at most 100`, 2);
  return n;
};

const ROLES = ['admin', 'reseller', 'user'];

interface GlobalOptions { dataDir?: string; json?: boolean; asAccount?: string; owner?: string }

const program = new Command();
program
  .name('tidemark')
  .description('Backups of hosting accounts: incremental snapshots, tar and tar.gz archives.')
  .option('--data-dir <dir>', 'state directory (default: $TIDEMARK_HOME or /var/lib/tidemark)')
  .option('--json', 'print one JSON document')
  .option('--as-account <name>', "act as this account's holder, with exactly its rights (as a panel bridge does)")
  .option('--owner <account>', "the provider reaching an account's destination or job of a given name")
  .showHelpAfterError()
  // Commander repeats a refused value: never a long one whole, never a control character raw.
  .configureOutput({ outputError: (text, write) => write(clipEchoedInput(text)) })
  .exitOverride();

const globals = (cmd: Command): GlobalOptions => cmd.optsWithGlobals<GlobalOptions>();
const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** Opens the state store, runs the action, and turns errors into a message and an exit code. */
function action<A extends unknown[]>(fn: (ctx: Context, json: boolean, ...args: A) => Promise<void>) {
  return actionAs<A>(async (ctx, json, who, ...args) => {
    // A command that does not take an actor would act as root: refused rather than misleading.
    if (who.actor !== ROOT || who.owner !== undefined) throw new UserError('--as-account and --owner do not apply to this command', 2);
    await fn(ctx, json, ...args);
  });
}

/** Whom a command acts for, and (for the provider) which account's destination or job a name means. */
interface Who { actor: Actor; owner: string | undefined }

/**
 * The CLI runs as root; `--as-account NAME` gives the command the identity of that account's
 * holder, exactly as a panel bridge will, so every rule for account holders applies.
 */
async function whoFrom(ctx: Context, g: GlobalOptions): Promise<Who> {
  const check = (name: string, option: string): void => {
    if (!ACCOUNT_NAME.test(name)) throw new UserError(`${option}: "${name}" is not an account name`, 2);
  };
  // The destinations and jobs of a removed account are owned by NAME#IDENTITY (store/accounts.ts).
  if (g.owner !== undefined && !RETIRED_OWNER.test(g.owner)) check(g.owner, '--owner');
  if (g.asAccount === undefined) return { actor: ROOT, owner: g.owner };
  check(g.asAccount, '--as-account');
  const account = g.asAccount === 'root' ? null : await ctx.panel(false).getAccount(g.asAccount);
  if (!account) throw new UserError(`--as-account: no account named "${g.asAccount}"`);
  // The account as it is now (a removed and re-created one is noticed here).
  await identify(ctx, account.username, account);
  return { actor: { name: account.username, role: 'user' }, owner: g.owner };
}

/** `action` for commands that account holders may use: they get whom they act for. */
function actionAs<A extends unknown[]>(fn: (ctx: Context, json: boolean, who: Who, ...args: A) => Promise<void>) {
  return async (...args: unknown[]): Promise<void> => {
    const cmd = args[args.length - 1] as Command;
    const g = globals(cmd);
    const ctx = await openContext(g.dataDir);
    try {
      await fn(ctx, Boolean(g.json), await whoFrom(ctx, g), ...(args.slice(0, -1) as A));
    } finally {
      ctx.close();
    }
  };
}

const destination = program.command('destination').description('places that store snapshots');
/** Secrets come from a file or stdin ('-'), never from the command line where `ps` shows them. */
function readSecret(file: string | undefined, what: string): string | undefined {
  if (file === undefined) return undefined;
  try {
    return fs.readFileSync(file === '-' ? 0 : file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new UserError(`cannot read the ${what} from ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

const MB_MAX = 1_000_000_000;
const TYPES = ['local', 'ssh'];

destination.command('add')
  .requiredOption('--name <name>', 'unique name')
  .addOption(new Option('--type <type>', 'local | ssh').choices(TYPES).makeOptionMandatory())
  .option('--path <dir>', 'local: an existing directory; ssh: the remote directory')
  .option('--hidden', 'hide its snapshots from account holders')
  .option('--free-space-limit <mb>', 'do not start a backup below this many MB free', wholeNumber(0, MB_MAX))
  .option('--host <host>', 'ssh: server name or address')
  .option('--port <port>', 'ssh: port (default 22)', wholeNumber(1, 65535))
  .option('--user <name>', 'ssh: remote user')
  .option('--password-file <file>', "ssh: file holding the password ('-': stdin)")
  .option('--key-file <file>', 'ssh: private key file (OpenSSH format)')
  .option('--passphrase-file <file>', "ssh: file holding the key's passphrase")
  .option('--timeout <seconds>', 'ssh: connection timeout (default 20)', seconds(1, 300))
  .option('--host-key <fingerprint>', 'ssh: expected host key, SHA256:... (default: pinned at first connection)')
  .option('--parallel <n>', 'ssh: files in transfer at once (default 8)', wholeNumber(1, 64))
  .option('--force-insecure-path', 'local: accept a path that a non-root user could change (not recommended; kept as a warning)')
  .action(actionAs(async (ctx, json, who, opts: {
    name: string; type: string; path?: string; hidden?: boolean; freeSpaceLimit?: number; host?: string; port?: number; user?: string;
    passwordFile?: string; keyFile?: string; passphraseFile?: string; timeout?: number; hostKey?: string; parallel?: number; forceInsecurePath?: boolean;
  }) => {
    if (who.owner !== undefined) throw new UserError("--owner does not apply to destination add: an account's destination is added with --as-account", 2);
    const input: AddDestinationInput = { name: opts.name, type: opts.type, path: opts.path ?? '', hidden: Boolean(opts.hidden), freeSpaceLimitMb: opts.freeSpaceLimit ?? 0,
      ...(opts.forceInsecurePath ? { forceInsecurePath: true } : {}) };
    if (opts.type === 'ssh') {
      Object.assign(input, {
        host: opts.host ?? '', username: opts.user, port: opts.port ?? 22,
        password: readSecret(opts.passwordFile, 'password'), privateKey: readSecret(opts.keyFile, 'private key'),
        passphrase: readSecret(opts.passphraseFile, 'passphrase'),
        ...(opts.timeout !== undefined ? { timeoutMs: Math.round(opts.timeout * 1000) } : {}),
        ...(opts.hostKey !== undefined ? { hostKeyFingerprint: opts.hostKey.replace(/^SHA256:/, '') } : {}),
        ...(opts.parallel !== undefined ? { parallelTransfers: opts.parallel } : {}),
      });
    }
    const d = await addDestination(ctx, input, who.actor);
    const doc = await describeDestination(ctx, d, who.actor);
    if (json) printJson(doc);
    else process.stdout.write(`destination "${d.name}" added${d.type === 'ssh' ? ` (host key SHA256:${String(d.settings.hostKeyFingerprint)})` : ''}\n`);
    if (!json && doc.warning) process.stderr.write(`warning: ${String(doc.warning)}\n`);
  }));
destination.command('list').action(actionAs(async (ctx, json, who) => {
  const docs = await Promise.all(listDestinations(ctx, who.actor).map((d) => describeDestination(ctx, d, who.actor)));
  if (json) printJson(docs);
  else printTable(docs.map((d) => ({ ...d, path: (d.settings as { path?: string }).path, free: d.space ? humanBytes((d.space as { freeBytes: number }).freeBytes) : d.problem, visible: d.snapshotsVisible })),
    ['name', 'owner', 'type', 'path', 'enabled', 'visible', 'snapshots', 'jobs', 'free']);
}));
destination.command('show').argument('<name>').action(actionAs(async (ctx, json, who, name: string) => {
  const doc = await describeDestination(ctx, getDestination(ctx, name, who.actor, who.owner), who.actor);
  if (json) printJson(doc); else printRecord(doc);
}));
destination.command('remove').argument('<name>')
  .description('forget a destination; its snapshots stay on it unless --delete-data')
  .option('--delete-data', 'also delete the snapshots Tidemark stored on it')
  .action(actionAs(async (ctx, json, who, name: string, opts: { deleteData?: boolean }) => {
    const r = await removeDestination(ctx, name, { deleteData: Boolean(opts.deleteData) }, who.actor, who.owner);
    if (json) printJson({ removed: r.record.name, deletedSnapshots: r.deletedSnapshots });
    else process.stdout.write(`destination "${r.record.name}" removed (${opts.deleteData ? `${r.deletedSnapshots} snapshots deleted from it` : 'data on it was not touched'})\n`);
  }));
for (const [verb, enabled] of [['enable', true], ['disable', false]] as const) {
  destination.command(verb).argument('<name>').description(enabled ? 'take new backups again' : 'take no new backups (snapshots stay restorable)')
    .action(actionAs(async (ctx, json, who, name: string) => {
      const d = setEnabled(ctx, name, enabled, who.actor, who.owner);
      if (json) printJson(await describeDestination(ctx, d, who.actor)); else process.stdout.write(`destination "${d.name}" ${verb}d\n`);
    }));
}
destination.command('visibility').argument('<name>')
  .addOption(new Option('--hidden', 'hide its snapshots from account holders').conflicts('visible'))
  .option('--visible', 'show its snapshots to account holders')
  .action(actionAs(async (ctx, json, who, name: string, opts: { hidden?: boolean; visible?: boolean }) => {
    if (!opts.hidden && !opts.visible) throw new UserError('give --hidden or --visible', 2);
    const d = setSnapshotsVisible(ctx, name, Boolean(opts.visible), who.actor, who.owner);
    if (json) printJson(await describeDestination(ctx, d)); else process.stdout.write(`snapshots on "${d.name}" are ${d.snapshotsVisible ? 'visible' : 'hidden'} to account holders\n`);
  }));
destination.command('validate').argument('<name>').description('connect, write, read back and delete a probe; report free space and latency')
  .action(actionAs(async (ctx, json, who, name: string) => {
    const r = await validateDestination(ctx, name, who.actor, who.owner);
    if (json) printJson(r);
    else if (r.ok) process.stdout.write(`ok: ${humanBytes(r.space!.freeBytes)} free, latency ${r.latencyMs} ms, probe written and read back in ${r.writeReadMs} ms\n`);
    else process.stderr.write(`failed: ${r.error}\n`);
    if (!r.ok) process.exitCode = 1;
  }));
destination.command('verify').argument('<name>')
  .description("re-read the destination's snapshots and compare them with their hashes; damaged ones are marked and named (exit 1)")
  .option('--account <user>', "only this account's snapshots")
  .option('--sample <percent>', 'only this share of them, chosen at random')
  .action(actionAs(async (ctx, json, who, name: string, opts: { account?: string; sample?: string }) => {
    const samplePercent = opts.sample !== undefined ? toPercent(opts.sample) : undefined;
    const r = await verifyDestination(ctx, name, { ...(opts.account !== undefined ? { account: opts.account } : {}), ...(samplePercent !== undefined ? { samplePercent } : {}) }, who.actor, who.owner);
    if (json) printJson(r);
    else {
      for (const s of r.reports) printVerifyReport(s);
      process.stdout.write(`${r.verified} of ${r.snapshots} snapshots verified on "${r.destination}": ${r.damaged} damaged\n`);
    }
    if (r.damaged > 0) process.exitCode = 1;
  }));
destination.command('browse').argument('<name>').argument('[path]', 'folder on the destination', '')
  .action(actionAs(async (ctx, json, who, name: string, dir: string) => {
    const entries = await browseDestination(ctx, name, dir, who.actor, who.owner);
    if (json) printJson(entries); else printTable(entries.map((e) => ({ ...e, modified: new Date(e.mtimeMs).toISOString() })), ['type', 'size', 'modified', 'name']);
  }));

destination.command('edit').argument('<name>')
  .description('change the settings of a destination (a new connection is tried before it is saved)')
  .option('--name <new>', 'rename it')
  .addOption(new Option('--type <type>', 'only accepted when it is the current type (a type never changes)').choices(TYPES))
  .option('--path <dir>', 'local: another directory; ssh: another remote directory (the snapshots must be there)')
  .addOption(new Option('--hidden', 'hide its snapshots from account holders').conflicts('visible'))
  .option('--visible', 'show its snapshots to account holders')
  .option('--free-space-limit <mb>', 'do not start a backup below this many MB free', wholeNumber(0, MB_MAX))
  .option('--host <host>', 'ssh: server name or address (the new host key is pinned unless --host-key)')
  .option('--port <port>', 'ssh: port', wholeNumber(1, 65535))
  .option('--user <name>', 'ssh: remote user')
  .option('--password-file <file>', "ssh: log in with this password instead ('-': stdin)")
  .option('--key-file <file>', 'ssh: log in with this private key instead')
  .option('--passphrase-file <file>', "ssh: the private key's passphrase")
  .option('--timeout <seconds>', 'ssh: connection timeout', seconds(1, 300))
  .option('--host-key <fingerprint>', 'ssh: expected host key, SHA256:...')
  .option('--parallel <n>', 'ssh: files in transfer at once', wholeNumber(1, 64))
  .option('--forget-snapshots', 'drop from the catalog the snapshots the new location does not hold (their data is not deleted)')
  .option('--force-insecure-path', 'local: accept the (new) path although a non-root user could change it (not recommended; kept as a warning)')
  .action(actionAs(async (ctx, json, who, name: string, opts: {
    name?: string; type?: string; path?: string; hidden?: boolean; visible?: boolean; freeSpaceLimit?: number; host?: string; port?: number;
    user?: string; passwordFile?: string; keyFile?: string; passphraseFile?: string; timeout?: number; hostKey?: string; parallel?: number; forgetSnapshots?: boolean;
    forceInsecurePath?: boolean;
  }) => {
    const changes: EditDestinationInput = {
      type: opts.type, name: opts.name, path: opts.path, hidden: opts.hidden ? true : opts.visible ? false : undefined,
      freeSpaceLimitMb: opts.freeSpaceLimit, host: opts.host, port: opts.port, username: opts.user,
      password: readSecret(opts.passwordFile, 'password'), privateKey: readSecret(opts.keyFile, 'private key'),
      passphrase: readSecret(opts.passphraseFile, 'passphrase'),
      timeoutMs: opts.timeout !== undefined ? Math.round(opts.timeout * 1000) : undefined,
      hostKeyFingerprint: opts.hostKey?.replace(/^SHA256:/, ''), parallelTransfers: opts.parallel, forgetSnapshots: Boolean(opts.forgetSnapshots),
      forceInsecurePath: opts.forceInsecurePath ? true : undefined,
    };
    const r = await editDestination(ctx, name, changes, who.actor, who.owner);
    const doc = { ...(await describeDestination(ctx, r.record, who.actor)), changed: r.changed, forgottenSnapshots: r.forgottenSnapshots };
    if (json) printJson(doc);
    else {
      process.stdout.write(r.changed.length ? `destination "${r.record.name}" changed: ${r.changed.join(', ')}\n` : `destination "${r.record.name}" unchanged\n`);
      if (r.forgottenSnapshots) process.stdout.write(`${r.forgottenSnapshots} snapshots dropped from the catalog (their data stays at the old location)\n`);
      if (typeof r.record.settings.warning === 'string') process.stderr.write(`warning: ${r.record.settings.warning}\n`);
    }
  }));
destination.command('reindex').argument('<name>')
  .description('rebuild the catalog of a destination from the snapshots it holds')
  .option('--account <user>', 'only this account')
  .action(actionAs(async (ctx, json, who, name: string, opts: { account?: string }) => {
    const r = await reindexDestination(ctx, name, opts.account !== undefined ? { account: opts.account } : {}, who.actor, who.owner);
    if (json) printJson(r);
    else {
      process.stdout.write(`${r.found} snapshots found in ${r.accounts.length} accounts: ${r.added} added, ${r.updated} updated, ${r.removed} removed from the catalog\n`);
      for (const p of r.problems) process.stderr.write(`problem: ${p.path}: ${p.error}\n`);
    }
  }));

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
  .addOption(new Option('--kind <kind>', 'hourly | daily | weekly | monthly | after').choices(SCHEDULE_KINDS).makeOptionMandatory())
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

const task = program.command('task').description('the queue: backups and restores, waiting or running, and their history');
task.command('list')
  .option('--active', 'only queued and running tasks, in the order the queue takes them')
  .option('--limit <n>', 'at most this many', wholeNumber(1, 1_000_000), 50)
  .action(actionAs(async (ctx, json, who, opts: { active?: boolean; limit: number }) => {
    if (!Number.isSafeInteger(opts.limit) || opts.limit < 1) throw new UserError('--limit: a positive whole number', 2);
    const tasks = (await listTasks(ctx, who.actor, { activeOnly: Boolean(opts.active), limit: opts.limit })).map(describeTask);
    if (json) printJson(tasks);
    else printTable(tasks.map((t) => ({ ...t, progress: progressText(t.progress as Record<string, unknown>) })), ['id', 'type', 'status', 'priority', 'account', 'progress', 'createdAt', 'error']);
  }));
task.command('show').argument('<id>', 'task id', wholeNumber(1, Number.MAX_SAFE_INTEGER)).action(actionAs(async (ctx, json, who, id: number) => {
  const t = await getTask(ctx, id, who.actor);
  const logs = ctx.store.tasks.logs(t.id, { provider: who.actor.role === 'admin' });
  if (json) printJson({ ...describeTask(t), log: logs });
  else {
    printRecord(describeTask(t));
    for (const l of logs) process.stdout.write(`${l.at}  ${l.level.padEnd(5)}  ${l.message}\n`);
  }
}));
task.command('cancel').argument('<id>', 'task id', wholeNumber(1, Number.MAX_SAFE_INTEGER))
  .description('a queued task never starts; a running backup stops and leaves no snapshot')
  .option('--wait', 'wait until the task has ended')
  .action(actionAs(async (ctx, json, who, id: number, opts: { wait?: boolean }) => {
    const outcome = await cancelTask(ctx, id, who.actor);
    const t = opts.wait ? await waitForEnd(ctx, id) : ctx.store.tasks.byId(id)!;
    if (json) printJson({ task: id, outcome, status: t.status });
    else process.stdout.write(`task ${id}: ${outcome === 'cancelled' ? 'cancelled' : opts.wait ? `stopped (${t.status})` : 'stopping'}\n`);
  }));

const snapshot = program.command('snapshot').description('points in time');
snapshot.command('list')
  .option('--account <user>')
  .option('--destination <name>')
  .action(actionAs(async (ctx, json, who, opts: { account?: string; destination?: string }) => {
    const snapshots = await listSnapshots(ctx, { ...opts, ...(who.owner !== undefined ? { owner: who.owner } : {}) }, who.actor);
    const docs = snapshots.map((s) => describeSnapshot(ctx, s));
    if (json) printJson(docs);
    else printTable(docs.map((d) => ({ ...d, size: humanBytes(d.bytes as number) })), ['id', 'account', 'destination', 'structure', 'status', 'files', 'size', 'finishedAt']);
  }));
snapshot.command('show').argument('<id>').option('--destination <name>').action(actionAs(async (ctx, json, who, id: string, opts: { destination?: string }) => {
  const s = await findSnapshot(ctx, id, opts.destination, who.actor, who.owner);
  const doc = { ...describeSnapshot(ctx, s), manifest: await snapshotManifest(ctx, s, who.actor) };
  if (json) printJson(doc); else printRecord(doc);
}));
snapshot.command('files').argument('<id>').argument('[path]', 'directory inside the home', folderPath, '')
  .option('--path-base64 <b64>', 'the directory as base64 bytes (for names that are not UTF-8)', folderBase64)
  .option('--destination <name>')
  .action(actionAs(async (ctx, json, who, id: string, dir: string, opts: { pathBase64?: string; destination?: string }) => {
    const s = await findSnapshot(ctx, id, opts.destination, who.actor, who.owner);
    const path = opts.pathBase64 !== undefined ? opts.pathBase64 : dir;
    const docs = (await snapshotFiles(ctx, s, path, who.actor)).map(describeEntry);
    if (json) printJson(docs); else printTable(docs, ['type', 'mode', 'size', 'mtime', 'name']);
  }));

snapshot.command('verify').argument('<id>').option('--destination <name>')
  .description('re-read what the snapshot stores and compare it with its hashes; a damaged one is marked and named (exit 1)')
  .action(actionAs(async (ctx, json, who, id: string, opts: { destination?: string }) => {
    const r = await verifySnapshot(ctx, await findSnapshot(ctx, id, opts.destination, who.actor, who.owner), who.actor);
    if (json) printJson(r); else printVerifyReport(r);
    if (r.result === 'damaged') process.exitCode = 1;
  }));

for (const [verb, locked] of [['lock', true], ['unlock', false]] as const) {
  snapshot.command(verb).argument('<id>').option('--destination <name>')
    .description(locked ? 'keep this snapshot: retention never removes it' : 'let retention handle this snapshot again')
    .action(actionAs(async (ctx, json, who, id: string, opts: { destination?: string }) => {
      const s = setSnapshotLocked(ctx, await findSnapshot(ctx, id, opts.destination, who.actor, who.owner), locked, who.actor);
      if (json) printJson(describeSnapshot(ctx, s)); else process.stdout.write(`snapshot ${s.id} ${verb}ed\n`);
    }));
}

// Snapshot note and delete, and schedule edit: the same services as the provider's pages.
snapshot.command('note').argument('<id>').requiredOption('--text <text>', 'the note (empty: none)').option('--destination <name>')
  .action(actionAs(async (ctx, json, who, id: string, opts: { text: string; destination?: string }) => {
    const s = await setSnapshotNote(ctx, await findSnapshot(ctx, id, opts.destination, who.actor, who.owner), opts.text, who.actor);
    if (json) printJson(describeSnapshot(ctx, s)); else process.stdout.write(`snapshot ${s.id}: note ${s.note ? 'set' : 'removed'}\n`);
  }));
snapshot.command('delete').argument('<id>').option('--destination <name>').option('--yes', 'really delete it (nothing is deleted without)')
  .description('delete one snapshot from its destination (refused while locked, or while a backup or restore holds its account)')
  .action(actionAs(async (ctx, json, who, id: string, opts: { destination?: string; yes?: boolean }) => {
    const found = await findSnapshot(ctx, id, opts.destination, who.actor, who.owner);
    const doc = describeSnapshot(ctx, found);
    if (!opts.yes) throw new UserError(`would delete snapshot ${found.id} of ${found.account} on ${String(doc.destination)}: add --yes`, 2);
    await deleteSnapshot(ctx, found, who.actor);
    if (json) printJson({ deleted: doc }); else process.stdout.write(`snapshot ${found.id} of ${found.account} deleted from ${String(doc.destination)}\n`);
  }));
schedule.command('edit').argument('<job>').argument('<name>').description('change a schedule\'s timing or retention (its name stays)')
  .addOption(new Option('--kind <kind>', 'hourly | daily | weekly | monthly | after').choices(SCHEDULE_KINDS))
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

interface DbSpec { name: string; as?: string }
const databaseSpec = (v: string, prev: DbSpec[] = []): DbSpec[] => [...prev, { name: v }];
const asSpec = (v: string, prev: string[] = []): string[] => [...prev, v];

function pathsFrom(opts: { path: BytePath[]; pathBase64: BytePath[] }): BytePath[] {
  return [...opts.path, ...opts.pathBase64];
}

/** Pairs each --as with the --database written just before it (commander keeps them apart). */
function pairDatabases(argv: string[]): DbSpec[] {
  const out: DbSpec[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = inline ?? argv[i + 1];
    if (flag === '--database' && value !== undefined) { out.push({ name: value }); if (inline === undefined) i++; }
    else if (flag === '--as' && value !== undefined) {
      const last = out[out.length - 1];
      if (!last || last.as !== undefined) throw new UserError('--as must follow a --database', 2);
      last.as = value;
      if (inline === undefined) i++;
    }
  }
  return out;
}

program.command('restore')
  .argument('<id>', 'snapshot id')
  .option('--path <path>', 'restore this file or folder (repeatable; default: the whole home)', homePath, [])
  .option('--path-base64 <b64>', 'a path given as base64 bytes (repeatable)', homePathBase64, [])
  .option('--database <db>', 'restore this database (repeatable)', databaseSpec, [])
  .option('--as <newdb>', 'restore the preceding --database under this name', asSpec, [])
  .addOption(new Option('--into-folder', 'restore files into a new folder inside the home').conflicts('inPlace'))
  .option('--in-place', 'overwrite what the snapshot holds, leave the rest (default)')
  .option('--destination <name>')
  .option('--wait', 'wait until it is done')
  .action(actionAs(async (ctx, json, who, id: string, opts: { path: BytePath[]; pathBase64: BytePath[]; intoFolder?: boolean; destination?: string }) => {
    const databases = pairDatabases(process.argv.slice(2));
    const s = await findSnapshot(ctx, id, opts.destination, who.actor, who.owner);
    const r = await restore(ctx, s, { paths: pathsFrom(opts), databases, intoFolder: Boolean(opts.intoFolder) }, who.actor);
    if (json) printJson(r);
    else {
      if (r.files) process.stdout.write(`restored ${r.files.files} files, ${r.files.directories} new folders, ${r.files.links} links${r.folder ? ` into ~/${r.folder}` : ''}\n`);
      for (const d of r.databases) process.stdout.write(`restored database ${d.name}${d.restoredAs !== d.name ? ` as ${d.restoredAs}` : ''}\n`);
      for (const w of r.files?.warnings ?? []) process.stderr.write(`warning: ${w.path}: ${w.message}\n`);
      for (const w of r.databaseWarnings) process.stderr.write(`warning: ${w}\n`);
    }
  }));

program.command('download')
  .argument('<id>', 'snapshot id')
  .option('--path <path>', 'include this file or folder (repeatable)', homePath, [])
  .option('--path-base64 <b64>', 'a path given as base64 bytes (repeatable)', homePathBase64, [])
  .option('--database <db>', 'include this database dump (repeatable)', collect, [])
  .requiredOption('--out <file>', 'where to write the .tar.gz', localFile)
  .option('--destination <name>')
  .action(actionAs(async (ctx, json, who, id: string, opts: { path: BytePath[]; pathBase64: BytePath[]; database: string[]; out: string; destination?: string }) => {
    const s = await findSnapshot(ctx, id, opts.destination, who.actor, who.owner);
    const r = await download(ctx, s, { paths: pathsFrom(opts), databases: opts.database, out: opts.out }, who.actor);
    if (json) printJson(r); else process.stdout.write(`wrote ${r.out}: ${r.files} files, ${humanBytes(r.bytes)}\n`);
  }));

program.command('login-url')
  .description('print a one-time URL (valid 2 minutes) that opens a web session (root only)')
  .requiredOption('--user <name>', 'who signs in')
  .addOption(new Option('--role <role>', 'admin | reseller | user').choices(ROLES).makeOptionMandatory())
  .action(action(async (ctx, json, opts: { user: string; role: string }) => {
    const { createLoginUrl } = await import('../app/login-url.js');
    const r = await createLoginUrl(ctx, opts.user, opts.role);
    if (json) printJson(r); else process.stdout.write(`${r.url}\n`);
  }));

const apiToken = program.command('api-token').description('tokens of the JSON API (root only)');
apiToken.command('create')
  .description('create a token: it is printed this once, only its hash is kept')
  .requiredOption('--name <name>', 'a name to list and revoke it by')
  .addOption(new Option('--role <role>', 'admin | reseller | user').choices(ROLES).default('admin'))
  .option('--user <name>', 'reseller or user tokens: whom the token acts as')
  .option('--expires <days>', 'valid this many days (default: until revoked)', wholeNumber(1, 3650))
  .action(action(async (ctx, json, opts: { name: string; role: string; user?: string; expires?: number }) => {
    const { createApiToken } = await import('../app/api/tokens.js');
    const doc = await createApiToken(ctx, { name: opts.name, role: opts.role, ...(opts.user !== undefined ? { user: opts.user } : {}), ...(opts.expires !== undefined ? { expiresDays: opts.expires } : {}) });
    if (json) printJson(doc); else process.stdout.write(`${String(doc.token)}\n(shown once: only its hash is stored)\n`);
  }));
apiToken.command('list').action(action(async (ctx, json) => {
  const { listApiTokens } = await import('../app/api/tokens.js');
  const docs = listApiTokens(ctx);
  if (json) printJson(docs); else printTable(docs, ['name', 'role', 'user', 'createdAt', 'expiresAt', 'lastUsedAt', 'valid']);
}));
apiToken.command('revoke').argument('<name>').action(action(async (ctx, json, name: string) => {
  const { revokeApiToken } = await import('../app/api/tokens.js');
  const doc = revokeApiToken(ctx, name);
  if (json) printJson(doc); else process.stdout.write(`API token "${name}" revoked\n`);
}));

program.command('panel-event')
  .description('an account event from the panel: the panel hook scripts call this')
  .argument('[event]', `${PANEL_EVENTS.join(' | ')} (with --panel cpanel: read from the hook input when left out)`)
  .addOption(new Option('--panel <panel>', 'read the account the way the panel passes it: cpanel (hook JSON on stdin), directadmin (environment)').choices(['cpanel', 'directadmin']))
  .option('--user <name>', 'the account (without --panel)')
  .option('--new-user <name>', 'renamed: the new name (without --panel)')
  .option('--time-limit <seconds>', 'removed: the longest the final backup may take (default 900)', seconds(0, 604800))
  .action(action(async (ctx, json, kind: string | undefined, opts: { panel?: string; user?: string; newUser?: string; timeLimit?: number }) => {
    if (kind !== undefined && !isPanelEventKind(kind)) throw new UserError(`unknown event "${kind}": use one of ${PANEL_EVENTS.join(', ')}`, 2);
    if (opts.timeLimit !== undefined && !(opts.timeLimit >= 0)) throw new UserError('--time-limit is a number of seconds', 2);
    let ev: PanelEvent | null;
    if (opts.panel === 'cpanel') ev = eventFromCpanelHook(fs.readFileSync(0, 'utf8'), kind);
    else if (kind === undefined) throw new UserError('give the event (or --panel cpanel with the hook input on stdin)', 2);
    else if (opts.panel === 'directadmin') ev = eventFromDirectAdminEnv(kind, process.env);
    else ev = eventFromArguments(kind, opts.user, opts.newUser);
    if (ev === null) {
      const doc = { event: null, ok: true, summary: 'the account kept its name: nothing to do', errors: [] };
      if (json) printJson(doc); else process.stdout.write(`${doc.summary}\n`);
      return;
    }
    const outcome = await handlePanelEvent(ctx, ev, opts.timeLimit !== undefined ? { timeLimitMs: opts.timeLimit * 1000 } : {});
    const text = json ? JSON.stringify(outcome, null, 2) + '\n' : [outcome.summary, ...outcome.errors.map((e) => `error: ${e}`)].join('\n') + '\n';
    // A removal never fails for the panel: what went wrong is in the outcome and the activity log.
    const code = outcome.ok || outcome.event === 'removed' ? 0 : 1;
    if (outcome.finalBackup?.timedOut) {
      // The unfinished backup is still running in this process: leave it behind (its partial folder is never listed).
      fs.writeSync(1, text);
      process.exit(code);
    }
    process.stdout.write(text);
    process.exitCode = code;
  }));

program.command('activity').description('the activity log: who did what, when, with what result (an account holder sees what concerns its own account)')
  .option('--since <date>', 'only entries from this day (YYYY-MM-DD) or moment (ISO 8601) on')
  .option('--reseller <name>', 'what this reseller sees (root only)')
  .option('--csv', 'print CSV (cells never start a spreadsheet formula)')
  .action(actionAs(async (ctx, json, who, opts: { since?: string; reseller?: string; csv?: boolean }) => {
    if (who.owner !== undefined) throw new UserError('--owner does not apply to activity', 2);
    let since = new Date(0);
    if (opts.since !== undefined) {
      const day = /^\d{4}-\d{2}-\d{2}$/.test(opts.since);
      since = new Date(day ? `${opts.since}T00:00:00Z` : opts.since);
      if (Number.isNaN(since.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(opts.since)) throw new UserError(`--since: "${opts.since}" is not a date (YYYY-MM-DD or ISO 8601)`, 2);
    }
    let actor = who.actor;
    if (opts.reseller !== undefined) {
      if (actor !== ROOT) throw new UserError('--reseller is for root only', 2);
      if (!ACCOUNT_NAME.test(opts.reseller) || opts.reseller === 'root') throw new UserError(`--reseller: "${opts.reseller}" is not a reseller name`, 2);
      actor = { name: opts.reseller, role: 'reseller' };
    }
    if (opts.csv && json) throw new UserError('--csv and --json: choose one', 2);
    const { activitySince } = await import('../services/activity.js');
    const entries = await activitySince(ctx, since, actor);
    if (opts.csv) {
      const { activityCsv } = await import('../store/activity.js');
      process.stdout.write(activityCsv(entries));
    } else if (json) printJson(entries);
    else printTable(entries.map((a) => ({ ...a, when: a.at })), ['when', 'actor', 'role', 'action', 'target', 'result', 'detail']);
  }));

snapshot.command('assign').argument('[id]', 'one snapshot')
  .description("hand snapshots of a removed account (the provider's since) to the account that now has its name")
  .option('--destination <name>', 'the destination of the snapshot, when its id is on several')
  .option('--from-identity <id>', 'every snapshot of this removed account identity (see account identities)', wholeNumber(1, Number.MAX_SAFE_INTEGER))
  .requiredOption('--to <account>', 'the account now of the name the snapshots were taken under')
  .action(action(async (ctx, json, id: string | undefined, opts: { destination?: string; fromIdentity?: number; to: string }) => {
    if (opts.fromIdentity !== undefined && !Number.isSafeInteger(opts.fromIdentity)) throw new UserError('--from-identity is the number of an account identity', 2);
    if (!ACCOUNT_NAME.test(opts.to)) throw new UserError(`--to: "${opts.to}" is not an account name`, 2);
    const { handOverSnapshots } = await import('../services/snapshot-handover.js');
    const r = await handOverSnapshots(ctx, { ...(id !== undefined ? { id } : {}), ...opts });
    if (json) printJson(r);
    else process.stdout.write(`${r.assigned.length} snapshot(s) handed to ${opts.to}\n`);
  }));

const accountCommand = program.command('account').description("an account's own settings");
accountCommand.command('identities')
  .description('the accounts Tidemark has known under each name: a removed one keeps its snapshots (the provider\'s) apart from a later account of the same name')
  .option('--account <name>', 'one name')
  .action(action(async (ctx, json, opts: { account?: string }) => {
    if (opts.account !== undefined && !ACCOUNT_NAME.test(opts.account)) throw new UserError(`--account: "${opts.account}" is not an account name`, 2);
    const { describeIdentity, listIdentities } = await import('../services/account-identity.js');
    const docs = (await listIdentities(ctx, opts.account)).map((a) => describeIdentity(ctx, a));
    if (json) printJson(docs);
    else printTable(docs, ['identity', 'account', 'uid', 'panelCreatedAt', 'removedAt', 'snapshots']);
  }));
accountCommand.command('notify')
  .description('mail about restores of the account, to its contact address in the panel (without --restores: show the setting)')
  .addOption(new Option('--restores <on|off>', 'mail me about my restores').choices(['on', 'off']))
  .option('--account <name>', 'the account (root; with --as-account it is that account)')
  .action(actionAs(async (ctx, json, who, opts: { restores?: 'on' | 'off'; account?: string }) => {
    if (who.owner !== undefined) throw new UserError('--owner does not apply to account notify', 2);
    const { restoreMailSetting, setRestoreMail } = await import('../services/account-preferences.js');
    const name = opts.account ?? (who.actor.role === 'user' ? who.actor.name : undefined);
    if (name === undefined) throw new UserError('give --account NAME (or act as the account with --as-account NAME)', 2);
    if (!ACCOUNT_NAME.test(name)) throw new UserError(`--account: "${name}" is not an account name`, 2);
    const r = opts.restores === undefined ? await restoreMailSetting(ctx, name, who.actor) : await setRestoreMail(ctx, name, opts.restores === 'on', who.actor);
    if (json) printJson(r);
    else {
      process.stdout.write(`${r.account}: mail about restores ${r.restores ? 'on' : 'off'}${r.restores && r.contactEmail ? ` (to ${r.contactEmail})` : ''}${r.chosen === null ? ` (the provider's default, "${r.mode}")` : ''}\n`);
      if (r.problem) process.stderr.write(`note: no mail goes out: ${r.problem}\n`);
    }
  }));

program.command('serve')
  .description('run the daemon: web pages and JSON API')
  .option('--port <port>', 'HTTP port on 127.0.0.1 (0: none)', wholeNumber(0, 65535))
  .action(async (opts: { port?: number }, cmd: Command) => {
    const g = globals(cmd);
    if (g.asAccount !== undefined || g.owner !== undefined) throw new UserError('--as-account and --owner do not apply to serve', 2);
    const ctx = await openContext(g.dataDir);
    // Loaded only here: Express is not needed by the other commands.
    const { serve } = await import('../app/serve.js');
    await serve(ctx, opts.port);
  });

async function main(): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    const json = process.argv.includes('--json');
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return;
      // Every malformed command line (unknown option, missing or refused value) ends here.
      process.exitCode = 2;
      if (json) printJson({ error: clipEchoedInput(err.message) });
      return;
    }
    const message = clipEchoedInput((err as Error).message ?? String(err));
    if (json) printJson({ error: message }); else process.stderr.write(`tidemark: ${message}\n`);
    if (!(err instanceof UserError) && process.env.TIDEMARK_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    process.exitCode = err instanceof UserError ? err.exitCode : 1;
  }
}

await main();
