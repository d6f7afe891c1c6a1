import { isDeepStrictEqual } from 'node:util';
import { ITEMS, STRUCTURES, type JobRecord } from '../store/jobs.js';
import type { DestinationRecord } from '../store/destinations.js';
import { UserError, type Context } from './context.js';
import { checkAccountDestinationsAllowed, getDestination, NAME, validationMessage } from './destinations.js';
import { isAccountOwned, mayActOnAccount, ownerOf, pickOwned, PROVIDER, ROOT, type Actor } from './actor.js';
import { checkMay } from './permissions.js';
import { ACCOUNT_NAME } from '../engine/snapshot-layout.js';
import { minutesOf, SCHEDULE_KINDS, type ScheduleKind, type ScheduleRecord } from '../store/schedules.js';
import { dueAt } from '../schedule/next-run.js';
import { MANUAL } from './retention.js';
import { refuseWhileBusy } from './busy.js';
import { plainIssues } from '../util/plain-issues.js';

async function addSchema() {
  const { z } = await import('zod');
  return z.object({
    name: z.string().regex(NAME, 'a name is 1-64 letters, digits, spaces, dots, dashes or underscores'),
    destination: z.string().min(1, 'destination is required'),
    structure: z.enum(STRUCTURES as [string, ...string[]], { message: `structure must be one of: ${STRUCTURES.join(', ')}` }),
    accounts: z.array(z.string().regex(ACCOUNT_NAME, 'invalid account name')).optional(),
    all: z.boolean().default(false),
    items: z.array(z.enum(ITEMS as [string, ...string[]], { message: `items are: ${ITEMS.join(', ')}` })).min(1).default([...ITEMS]),
    excludes: z.array(z.string().min(1)).default([]),
  });
}

export interface AddJobInput {
  name: string;
  destination: string;
  structure: string;
  accounts?: string[];
  all?: boolean;
  items?: string[];
  excludes?: string[];
}

/**
 * Adds a job. An account holder may add one only for its own account and only to a
 * destination it owns; a job to an account's destination backs up that account alone,
 * whoever adds it (the account holder reads everything stored there). The job belongs to
 * the owner of its destination (`owner` picks an account's destination by name, for the provider).
 */
export async function addJob(ctx: Context, input: AddJobInput, actor: Actor = ROOT, owner?: string): Promise<JobRecord> {
  if (actor.role !== 'admin') checkMay(ctx, actor, 'ownJobs', actor.name);
  if (actor.role === 'user' && !input.all && (input.accounts === undefined || input.accounts.length === 0)) input = { ...input, accounts: [actor.name] };
  const parsed = (await addSchema()).safeParse(input, plainIssues);
  if (!parsed.success) throw new UserError(validationMessage(parsed.error), 'invalid-input');
  const j = parsed.data;
  if (j.all === (j.accounts !== undefined && j.accounts.length > 0)) throw new UserError('give either --all or --accounts', 'invalid-input');
  const dest = getDestination(ctx, j.destination, actor, owner);
  await checkJobRules(ctx, actor, dest, j);
  if (ctx.store.jobs.byName(j.name, dest.owner)) throw new UserError(`a job named "${j.name}" exists already`);
  return ctx.store.jobs.insert({
    name: j.name, owner: dest.owner, destinationId: dest.id, structure: j.structure as JobRecord['structure'],
    accounts: j.all ? { all: true } : { list: j.accounts! }, items: j.items as JobRecord['items'], excludes: j.excludes, enabled: true,
  });
}

/** Who may back up what where: the same rules for a new job and a changed one. */
async function checkJobRules(ctx: Context, actor: Actor, dest: DestinationRecord, j: { all: boolean; accounts?: string[] | undefined }): Promise<void> {
  if (actor.role !== 'admin') {
    if (j.all) throw new UserError('an account holder backs up only its own account: use --accounts');
    for (const a of j.accounts!) {
      if (!(await mayActOnAccount(ctx, actor, a))) throw new UserError(actor.role === 'user' ? 'an account holder backs up only its own account' : `unknown account "${a}"`);
    }
  }
  if (isAccountOwned(dest)) {
    if (j.all || j.accounts!.some((a) => a !== dest.owner)) {
      throw new UserError(`destination "${dest.name}" belongs to account ${dest.owner}: its jobs back up that account only`);
    }
    checkAccountDestinationsAllowed(ctx, dest);
  }
  if (j.accounts) {
    const panel = ctx.panel(false);
    for (const a of j.accounts) if (!(await panel.getAccount(a))) throw new UserError(`unknown account "${a}"`);
  }
}

/** What `editJob` may change; what is not given stays. `accounts` replaces `all` and the other way round. */
export interface EditJobInput {
  name?: string;
  /** A destination of the job's owner: a job never moves to another owner's destination. */
  destination?: string;
  structure?: string;
  accounts?: string[];
  all?: boolean;
  items?: string[];
  excludes?: string[];
}

export interface EditJobOutcome {
  record: JobRecord;
  /** Names of the settings that changed. */
  changed: string[];
}

/**
 * Changes a job, checked by the rules of `addJob`. The snapshots it made stay as they
 * are; the next run follows the new settings (a new structure starts a new chain).
 */
export async function editJob(ctx: Context, name: string, changes: EditJobInput, actor: Actor = ROOT, owner?: string): Promise<EditJobOutcome> {
  const job = getJob(ctx, name, actor, owner);
  const activity = (result: string, detail: string): void =>
    ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'job.edit', target: job.name, result, detail });
  try {
    const outcome = await applyJobEdit(ctx, job, changes, actor);
    activity('ok', `changed: ${outcome.changed.join(', ') || 'nothing'}`);
    return outcome;
  } catch (err) {
    activity('refused', (err as Error).message);
    throw err;
  }
}

async function applyJobEdit(ctx: Context, job: JobRecord, changes: EditJobInput, actor: Actor): Promise<EditJobOutcome> {
  const current = ctx.store.destinations.byId(job.destinationId);
  if (!current) throw new UserError(`job "${job.name}" has no destination`);
  const listed = changes.accounts !== undefined && changes.accounts.length > 0;
  const all = listed ? false : changes.all ?? 'all' in job.accounts;
  const merged = {
    name: changes.name ?? job.name,
    destination: changes.destination ?? current.name,
    structure: changes.structure ?? job.structure,
    all,
    ...(all ? {} : { accounts: listed ? changes.accounts : 'list' in job.accounts ? job.accounts.list : [] }),
    items: changes.items ?? job.items,
    excludes: changes.excludes ?? job.excludes,
  };
  const parsed = (await addSchema()).safeParse(merged, plainIssues);
  if (!parsed.success) throw new UserError(validationMessage(parsed.error), 'invalid-input');
  const j = parsed.data;
  if (j.all === (j.accounts !== undefined && j.accounts.length > 0)) throw new UserError('accounts: give either all accounts or a list of them', 'invalid-input');
  const dest = changes.destination === undefined ? current : getDestination(ctx, j.destination, actor, job.owner);
  if (dest.owner !== job.owner) throw new UserError(`no destination named "${j.destination}"`);
  await checkJobRules(ctx, actor, dest, j);
  for (const sch of ctx.store.schedules.ofJob(job.id)) {
    try { checkFrequentStructure(j.structure, sch.kind); } catch {
      throw new UserError(`structure: job "${job.name}" has the schedule "${sch.name}" every ${minutesOf(sch.kind)} minutes, which is for the incremental structure only: change or remove that schedule first`);
    }
  }
  if (j.name !== job.name && ctx.store.jobs.byName(j.name, job.owner)) throw new UserError(`name: a job named "${j.name}" exists already`);
  const accounts: JobRecord['accounts'] = j.all ? { all: true } : { list: [...new Set(j.accounts!)] };
  const next = { name: j.name, destinationId: dest.id, structure: j.structure as JobRecord['structure'], accounts, items: j.items as JobRecord['items'], excludes: j.excludes };
  const changed = (['name', 'destinationId', 'structure', 'accounts', 'items', 'excludes'] as const)
    .filter((k) => !isDeepStrictEqual(next[k], job[k])).map((k) => (k === 'destinationId' ? 'destination' : k));
  if (changed.length === 0) return { record: job, changed };
  ctx.store.db.prepare('UPDATE jobs SET name = ?, destination_id = ?, structure = ?, accounts = ?, items = ?, excludes = ? WHERE id = ?')
    .run(next.name, next.destinationId, next.structure, JSON.stringify(next.accounts), JSON.stringify(next.items), JSON.stringify(next.excludes), job.id);
  return { record: ctx.store.jobs.byId(job.id)!, changed };
}

/** The job `actor` means by `name`: an account holder finds only its own (see pickOwned). */
export function getJob(ctx: Context, name: string, actor: Actor = ROOT, owner?: string): JobRecord {
  const j = pickOwned(ctx.store.jobs.allNamed(name), actor, owner, 'job', name);
  if (!j) throw new UserError(`no job named "${name}"`);
  return j;
}

/** The jobs `actor` sees: all for the provider, its own for an account. */
export function listJobs(ctx: Context, actor: Actor = ROOT): JobRecord[] {
  return actor.role === 'admin' ? ctx.store.jobs.list() : ctx.store.jobs.listByOwner(ownerOf(actor));
}

export function describeJob(ctx: Context, j: JobRecord): Record<string, unknown> {
  return {
    name: j.name, owner: j.owner, destination: ctx.store.destinations.byId(j.destinationId)?.name ?? null, structure: j.structure,
    accounts: 'all' in j.accounts ? 'all' : j.accounts.list, items: j.items, excludes: j.excludes, enabled: j.enabled, createdAt: j.createdAt,
  };
}

export function removeJob(ctx: Context, name: string, actor: Actor = ROOT, owner?: string): JobRecord {
  const j = getJob(ctx, name, actor, owner);
  // One write transaction: no task of the job can be created between the check and the removal.
  ctx.store.db.transaction(() => {
    refuseWhileBusy(ctx, `job "${j.name}"`, (t) => t.jobId === j.id);
    ctx.store.jobs.remove(j.id);
  }).immediate();
  return j;
}

async function scheduleSchema() {
  const { z } = await import('zod');
  const time = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'at is a time HH:MM (00:00 to 23:59)');
  return z.object({
    name: z.string().regex(NAME, 'a name is 1-64 letters, digits, spaces, dots, dashes or underscores').refine((n) => n !== MANUAL, { message: `"${MANUAL}" names the snapshots taken on demand` }).optional(),
    kind: z.enum(SCHEDULE_KINDS as [string, ...string[]], { message: `kind must be one of: ${SCHEDULE_KINDS.join(', ')}` }),
    at: time.optional(),
    weekday: z.number().int().min(0, 'weekday is 0 (Sunday) to 6').max(6, 'weekday is 0 (Sunday) to 6').optional(),
    monthday: z.number().int().min(1, 'monthday is 1 to 28').max(28, 'monthday is 1 to 28 (every month has it)').optional(),
    afterJob: z.string().min(1).optional(),
    keep: z.number({ message: 'keep is a whole number of snapshots, at least 1' }).int('keep is a whole number').min(1, 'keep is at least 1'),
  }).superRefine((s, c) => {
    const bad = (message: string): void => { c.addIssue({ code: 'custom', message }); };
    if (s.kind === 'hourly' && s.at !== undefined && !s.at.startsWith('00:')) bad('hourly: at is 00:MM, the minute of each hour');
    if (s.kind === 'weekly' && s.weekday === undefined) bad('weekly: give the weekday (0 Sunday to 6)');
    if (s.kind !== 'weekly' && s.weekday !== undefined) bad('weekday is for weekly schedules only');
    if (s.kind === 'monthly' && s.monthday === undefined) bad('monthly: give the monthday (1 to 28)');
    if (s.kind !== 'monthly' && s.monthday !== undefined) bad('monthday is for monthly schedules only');
    if (s.kind === 'after' && s.afterJob === undefined) bad('after: give the job whose run starts this one');
    if (s.kind !== 'after' && s.afterJob !== undefined) bad('afterJob is for "after" schedules only');
    if (s.kind === 'after' && s.at !== undefined) bad('an "after" schedule has no time of its own');
    if (minutesOf(s.kind) !== null && s.at !== undefined) bad(`${s.kind}: a schedule every ${minutesOf(s.kind)} minutes has no time of its own (it runs at :00, :${String(minutesOf(s.kind)).padStart(2, '0')}, … of every hour)`);
  });
}

export interface AddScheduleInput {
  name?: string;
  kind: string;
  at?: string;
  weekday?: number;
  monthday?: number;
  /** kind 'after': the name of a job of the same owner. */
  afterJob?: string;
  keep: number;
}

/**
 * Adds a schedule with its own retention to a job. The name (default: the kind) is what
 * its snapshots carry. An "after" schedule follows a job of the same owner, never in a loop.
 */
export async function addSchedule(ctx: Context, jobName: string, input: AddScheduleInput, actor: Actor = ROOT, owner?: string, now = Date.now()): Promise<ScheduleRecord> {
  const job = getJob(ctx, jobName, actor, owner);
  if (actor.role !== 'admin') checkMay(ctx, actor, 'ownJobs', actor.name);
  return addScheduleToJob(ctx, job, input, actor, now);
}

/** addSchedule for a job already found and checked (the provider's pages: see jobInProviderScope). */
export async function addScheduleToJob(ctx: Context, job: JobRecord, input: AddScheduleInput, actor: Actor, now = Date.now()): Promise<ScheduleRecord> {
  if (actor.role === 'user') checkMay(ctx, actor, 'ownJobs', actor.name);
  const parsed = (await scheduleSchema()).safeParse(input, plainIssues);
  if (!parsed.success) throw new UserError(validationMessage(parsed.error), 'invalid-input');
  const s = parsed.data;
  checkFrequentStructure(job.structure, s.kind);
  const name = s.name ?? s.kind;
  if (ctx.store.schedules.ofJob(job.id).some((x) => x.name === name)) throw new UserError(`name: job "${job.name}" has a schedule named "${name}" already: give another --name`);
  const afterJobId = s.afterJob === undefined ? null : afterJobIdOf(ctx, job, s.afterJob);
  const record = ctx.store.schedules.insert({
    jobId: job.id, name, kind: s.kind as ScheduleKind, at: untimed(s.kind) ? null : s.at ?? '00:00', weekday: s.weekday ?? null,
    monthday: s.monthday ?? null, afterJobId, keep: s.keep, createdAt: now,
  });
  ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'schedule.add', target: `${job.name}/${name}`, result: 'ok', detail: JSON.stringify(describeSchedule(ctx, record)) });
  return record;
}

/** Kinds without a time of day: 'after' and every N minutes. */
const untimed = (kind: string): boolean => kind === 'after' || minutesOf(kind) !== null;

/**
 * Every N minutes only for the incremental structure: an unchanged file costs a hard link
 * there, while an archive or compressed run copies (and compresses) the whole account each time.
 */
function checkFrequentStructure(structure: string, kind: string): void {
  const every = minutesOf(kind);
  if (every === null || structure === 'incremental') return;
  throw new UserError(`kind: a schedule every ${every} minutes is for jobs with the incremental structure only; this job's structure is ${structure}, which would copy the whole account every ${every} minutes (choose hourly or less often, or make the job incremental)`);
}

/** The job an "after" schedule of `job` follows: one of the same owner, never in a loop. */
function afterJobIdOf(ctx: Context, job: JobRecord, afterJob: string): number {
  const first = ctx.store.jobs.byName(afterJob, job.owner);
  if (!first) throw new UserError(`afterJob: no job named "${afterJob}"`);
  if (first.id === job.id || followsJob(ctx, first.id, job.id)) throw new UserError(`afterJob: job "${job.name}" after "${first.name}" would run in a loop`);
  return first.id;
}

/** What `editSchedule` may change; the name stays (its snapshots carry it, and retention finds them by it). */
export type EditScheduleInput = Partial<Omit<AddScheduleInput, 'name'>>;

/**
 * Changes a schedule's timing and retention, checked by the rules of addSchedule. A new
 * kind drops what belonged to the old one (a weekday, a monthday, the job it followed)
 * unless given again.
 */
export async function editSchedule(ctx: Context, jobName: string, name: string, changes: EditScheduleInput, actor: Actor = ROOT, owner?: string): Promise<ScheduleRecord> {
  const job = getJob(ctx, jobName, actor, owner);
  if (actor.role !== 'admin') checkMay(ctx, actor, 'ownJobs', actor.name);
  return editScheduleOfJob(ctx, job, name, changes, actor);
}

export async function editScheduleOfJob(ctx: Context, job: JobRecord, name: string, changes: EditScheduleInput, actor: Actor): Promise<ScheduleRecord> {
  if (actor.role === 'user') checkMay(ctx, actor, 'ownJobs', actor.name);
  const current = scheduleOf(ctx, job, name);
  const kind = changes.kind ?? current.kind;
  const same = kind === current.kind;
  const afterName = current.afterJobId === null ? undefined : ctx.store.jobs.byId(current.afterJobId)?.name;
  const merged: AddScheduleInput = {
    name: current.name, kind, keep: changes.keep ?? current.keep,
    ...(changes.at !== undefined ? { at: changes.at } : same && current.at !== null ? { at: current.at } : {}),
    ...(changes.weekday !== undefined ? { weekday: changes.weekday } : same && current.weekday !== null ? { weekday: current.weekday } : {}),
    ...(changes.monthday !== undefined ? { monthday: changes.monthday } : same && current.monthday !== null ? { monthday: current.monthday } : {}),
    ...(changes.afterJob !== undefined ? { afterJob: changes.afterJob } : same && afterName !== undefined ? { afterJob: afterName } : {}),
  };
  const parsed = (await scheduleSchema()).safeParse(merged, plainIssues);
  if (!parsed.success) throw new UserError(validationMessage(parsed.error), 'invalid-input');
  const s = parsed.data;
  checkFrequentStructure(job.structure, s.kind);
  const next = {
    kind: s.kind as ScheduleKind, at: untimed(s.kind) ? null : s.at ?? '00:00', weekday: s.weekday ?? null, monthday: s.monthday ?? null,
    afterJobId: s.afterJob === undefined ? null : afterJobIdOf(ctx, job, s.afterJob), keep: s.keep,
  };
  ctx.store.schedules.update(current.id, next);
  const record = ctx.store.schedules.byId(current.id)!;
  ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'schedule.edit', target: `${job.name}/${name}`, result: 'ok', detail: JSON.stringify(describeSchedule(ctx, record)) });
  return record;
}

function scheduleOf(ctx: Context, job: JobRecord, name: string): ScheduleRecord {
  const s = ctx.store.schedules.ofJob(job.id).find((x) => x.name === name);
  if (!s) throw new UserError(`job "${job.name}" has no schedule named "${name}"`);
  return s;
}

/**
 * A job by id as the provider's pages reach it: an admin any job; a reseller only the jobs
 * of the accounts it owns (an account's own destination's jobs), never the provider's or
 * another reseller's accounts' (those are "not found", as if they did not exist).
 */
export async function jobInProviderScope(ctx: Context, actor: Actor, id: number): Promise<JobRecord> {
  const job = Number.isSafeInteger(id) ? ctx.store.jobs.byId(id) : null;
  if (!job) throw new UserError(`no job ${id}`);
  if (actor.role === 'admin') return job;
  if (actor.role !== 'reseller' || job.owner === PROVIDER || job.owner === actor.name || !(await mayActOnAccount(ctx, actor, job.owner))) throw new UserError(`no job ${id}`);
  return job;
}

/** The jobs the provider's pages show `actor`: an admin all, a reseller those of the accounts it owns. */
export async function jobsInProviderScope(ctx: Context, actor: Actor): Promise<JobRecord[]> {
  if (actor.role === 'admin') return ctx.store.jobs.list();
  if (actor.role !== 'reseller') return [];
  const mine = new Set((await ctx.panel(false).listAccounts()).filter((a) => a.owner === actor.name).map((a) => a.username));
  return ctx.store.jobs.list().filter((j) => j.owner !== PROVIDER && mine.has(j.owner));
}

/** Whether job `jobId` already runs, directly or through others, after job `target`. */
function followsJob(ctx: Context, jobId: number, target: number, seen = new Set<number>()): boolean {
  if (seen.has(jobId)) return false;
  seen.add(jobId);
  for (const s of ctx.store.schedules.ofJob(jobId)) {
    if (s.afterJobId === null) continue;
    if (s.afterJobId === target || followsJob(ctx, s.afterJobId, target, seen)) return true;
  }
  return false;
}

export function listSchedules(ctx: Context, jobName: string, actor: Actor = ROOT, owner?: string): { job: JobRecord; schedules: ScheduleRecord[]; manualKeep: number | null } {
  const job = getJob(ctx, jobName, actor, owner);
  return { job, schedules: ctx.store.schedules.ofJob(job.id), manualKeep: ctx.store.schedules.manualKeep(job.id) };
}

export function removeSchedule(ctx: Context, jobName: string, name: string, actor: Actor = ROOT, owner?: string): ScheduleRecord {
  const job = getJob(ctx, jobName, actor, owner);
  if (actor.role !== 'admin') checkMay(ctx, actor, 'ownJobs', actor.name);
  return removeScheduleOfJob(ctx, job, name, actor);
}

export function removeScheduleOfJob(ctx: Context, job: JobRecord, name: string, actor: Actor): ScheduleRecord {
  if (actor.role === 'user') checkMay(ctx, actor, 'ownJobs', actor.name);
  const s = scheduleOf(ctx, job, name);
  ctx.store.schedules.remove(s.id);
  ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'schedule.remove', target: `${job.name}/${name}`, result: 'ok', detail: '' });
  return s;
}

/** How many snapshots taken on demand a job keeps (null: all of them). */
export function setManualKeep(ctx: Context, jobName: string, keep: number | null, actor: Actor = ROOT, owner?: string): JobRecord {
  const job = getJob(ctx, jobName, actor, owner);
  if (actor.role !== 'admin') checkMay(ctx, actor, 'ownJobs', actor.name);
  return setManualKeepOfJob(ctx, job, keep, actor);
}

export function setManualKeepOfJob(ctx: Context, job: JobRecord, keep: number | null, actor: Actor): JobRecord {
  if (actor.role === 'user') checkMay(ctx, actor, 'ownJobs', actor.name);
  if (keep !== null && !(Number.isInteger(keep) && keep >= 1)) throw new UserError('keep is a whole number of snapshots, at least 1 (or "all")');
  ctx.store.schedules.setManualKeep(job.id, keep);
  ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'schedule.manual', target: job.name, result: 'ok', detail: `keep ${keep ?? 'all'}` });
  return job;
}

export function describeSchedule(ctx: Context, s: ScheduleRecord): Record<string, unknown> {
  const due = dueAt(s);
  return {
    job: ctx.store.jobs.byId(s.jobId)?.name ?? null, name: s.name, kind: s.kind, at: s.at, weekday: s.weekday, monthday: s.monthday,
    afterJob: s.afterJobId === null ? null : ctx.store.jobs.byId(s.afterJobId)?.name ?? null, keep: s.keep,
    lastRunAt: s.lastRunAt === null ? null : new Date(s.lastRunAt).toISOString(), nextRunAt: due === null ? null : new Date(due).toISOString(),
  };
}
