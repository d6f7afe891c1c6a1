import express from 'express';
import { UserError } from '../../services/context.js';
import {
  addScheduleToJob, describeJob, describeSchedule, editScheduleOfJob, jobInProviderScope, jobsInProviderScope, removeScheduleOfJob,
  setManualKeepOfJob, type AddScheduleInput,
} from '../../services/jobs.js';
import { applyRetention, type RetentionOutcome } from '../../services/retention.js';
import { minutesOf, SCHEDULE_KINDS, type ScheduleRecord } from '../../store/schedules.js';
import type { JobRecord } from '../../store/jobs.js';
import { notFound } from '../http-error.js';
import { actorOf } from '../session.js';
import { field, formErrors, noErrors, numberField, type FormErrors, type MessageRules } from './form-errors.js';
import type { ProviderState } from './state.js';

const FIELDS = ['name', 'kind', 'at', 'weekday', 'monthday', 'afterJob', 'keep', 'manualKeep'] as const;
const RULES: MessageRules = [
  [/^every\d+min: |no time of its own|^hourly: at/, 'at'],
  [/^kind: /, 'kind'],
  [/weekday/, 'weekday'],
  [/monthday/, 'monthday'],
  [/afterJob|"after"|^after:/, 'afterJob'],
  [/^keep|snapshots, at least 1/, 'keep'],
  [/schedule named/, 'name'],
];

type ScheduleForm = Record<'name' | 'kind' | 'at' | 'weekday' | 'monthday' | 'afterJob' | 'keep', string>;

const emptyForm = (): ScheduleForm => ({ name: '', kind: 'daily', at: '03:00', weekday: '0', monthday: '1', afterJob: '', keep: '7' });

function formOf(body: Record<string, unknown>): ScheduleForm {
  return {
    name: field(body, 'name'), kind: field(body, 'kind'), at: field(body, 'at'), weekday: field(body, 'weekday'),
    monthday: field(body, 'monthday'), afterJob: field(body, 'afterJob'), keep: field(body, 'keep'),
  };
}

const valuesOf = (s: ScheduleRecord, afterJob: string): ScheduleForm => ({
  name: s.name, kind: s.kind, at: s.at ?? '', weekday: s.weekday === null ? '0' : String(s.weekday), monthday: s.monthday === null ? '1' : String(s.monthday),
  afterJob, keep: String(s.keep),
});

/** Only what the chosen kind uses: the fields of the other kinds stay in the form but mean nothing. */
function inputOf(v: ScheduleForm): AddScheduleInput {
  const keep = numberField(v.keep);
  const out: AddScheduleInput = { kind: v.kind, keep: keep ?? Number.NaN };
  if (v.kind !== 'after' && minutesOf(v.kind) === null && v.at !== '') out.at = v.at;
  if (v.kind === 'weekly') { const n = numberField(v.weekday); if (n !== undefined) out.weekday = n; }
  if (v.kind === 'monthly') { const n = numberField(v.monthday); if (n !== undefined) out.monthday = n; }
  if (v.kind === 'after' && v.afterJob !== '') out.afterJob = v.afterJob;
  if (v.name !== '') out.name = v.name;
  return out;
}

/**
 * Schedules and retention of a job: its schedules with their next run, the rule for
 * snapshots taken on demand, and what retention would remove now. An admin reaches every
 * job; a reseller the jobs of the accounts it owns, and no other (not found).
 */
export function scheduleRoutes(st: ProviderState): express.Router {
  const { ctx } = st;
  const r = express.Router();

  const jobOf = async (res: express.Response, id: unknown): Promise<JobRecord> => {
    try {
      return await jobInProviderScope(ctx, actorOf(res), Number(id));
    } catch (err) {
      if (err instanceof UserError) throw notFound();
      throw err;
    }
  };

  r.get('/', async (_req, res) => {
    const jobs = await jobsInProviderScope(ctx, actorOf(res));
    res.render('admin/schedule-jobs', {
      jobs: jobs.map((j) => ({
        id: j.id, ...describeJob(ctx, j), manualKeep: ctx.store.schedules.manualKeep(j.id),
        schedules: ctx.store.schedules.ofJob(j.id).map((s) => describeSchedule(ctx, s)),
      })),
    });
  });

  const page = async (res: express.Response, job: JobRecord, opts: { values?: ScheduleForm; errors?: FormErrors; manualErrors?: FormErrors; manualValue?: string; applied?: RetentionOutcome; status?: number } = {}): Promise<void> => {
    const preview = await applyRetention(ctx, { jobIds: [job.id], dryRun: true });
    const manualKeep = ctx.store.schedules.manualKeep(job.id);
    res.status(opts.status ?? 200).render('admin/schedules', {
      job: { id: job.id, ...describeJob(ctx, job) },
      schedules: ctx.store.schedules.ofJob(job.id).map((s) => describeSchedule(ctx, s)),
      manualKeep, manualValue: opts.manualValue ?? (manualKeep === null ? '' : String(manualKeep)), manualErrors: opts.manualErrors ?? noErrors(),
      kinds: SCHEDULE_KINDS, otherJobs: ctx.store.jobs.list().filter((j) => j.owner === job.owner && j.id !== job.id).map((j) => j.name),
      values: opts.values ?? emptyForm(), errors: opts.errors ?? noErrors(),
      preview: preview.removed, applied: opts.applied ?? null,
    });
  };

  r.get('/:job', async (req, res) => { await page(res, await jobOf(res, req.params.job)); });

  r.post('/:job', async (req, res) => {
    const job = await jobOf(res, req.params.job);
    const values = formOf((req.body ?? {}) as Record<string, unknown>);
    try {
      await addScheduleToJob(ctx, job, inputOf(values), actorOf(res));
      res.redirect(303, `/admin/schedules/${job.id}`);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      await page(res, job, { values, errors: formErrors(err.message, FIELDS, RULES), status: 400 });
    }
  });

  const scheduleNamed = (job: JobRecord, name: unknown): ScheduleRecord => {
    const s = ctx.store.schedules.ofJob(job.id).find((x) => x.name === name);
    if (!s) throw notFound();
    return s;
  };

  const editForm = (res: express.Response, job: JobRecord, s: ScheduleRecord, values: ScheduleForm, errors: FormErrors, status = 200): void => {
    res.status(status).render('admin/schedule-edit', {
      job: { id: job.id, name: job.name }, schedule: describeSchedule(ctx, s), values, errors, kinds: SCHEDULE_KINDS,
      otherJobs: ctx.store.jobs.list().filter((j) => j.owner === job.owner && j.id !== job.id).map((j) => j.name),
    });
  };

  r.get('/:job/edit', async (req, res) => {
    const job = await jobOf(res, req.params.job);
    const s = scheduleNamed(job, req.query.name);
    editForm(res, job, s, valuesOf(s, s.afterJobId === null ? '' : ctx.store.jobs.byId(s.afterJobId)?.name ?? ''), noErrors());
  });

  r.post('/:job/edit', async (req, res) => {
    const job = await jobOf(res, req.params.job);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const s = scheduleNamed(job, field(body, 'schedule'));
    const values = { ...formOf(body), name: s.name };
    try {
      const { name: _name, ...changes } = inputOf(values);
      await editScheduleOfJob(ctx, job, s.name, changes, actorOf(res));
      res.redirect(303, `/admin/schedules/${job.id}`);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      editForm(res, job, s, values, formErrors(err.message, FIELDS, RULES), 400);
    }
  });

  r.post('/:job/remove', async (req, res) => {
    const job = await jobOf(res, req.params.job);
    const s = scheduleNamed(job, field((req.body ?? {}) as Record<string, unknown>, 'schedule'));
    removeScheduleOfJob(ctx, job, s.name, actorOf(res));
    res.redirect(303, `/admin/schedules/${job.id}`);
  });

  r.post('/:job/manual', async (req, res) => {
    const job = await jobOf(res, req.params.job);
    const value = field((req.body ?? {}) as Record<string, unknown>, 'manualKeep');
    try {
      const keep = value === '' ? null : numberField(value) ?? null;
      setManualKeepOfJob(ctx, job, keep, actorOf(res));
      res.redirect(303, `/admin/schedules/${job.id}`);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      await page(res, job, { manualValue: value, manualErrors: formErrors(`manualKeep: ${err.message}`, FIELDS), status: 400 });
    }
  });

  /** Applies this job's retention now: what the preview showed, under the same rules (locked and busy accounts are left). */
  r.post('/:job/retention', async (req, res) => {
    const job = await jobOf(res, req.params.job);
    const applied = await applyRetention(ctx, { jobIds: [job.id] });
    const a = actorOf(res);
    ctx.store.activity.record({ actor: a.name, role: a.role, action: 'retention', target: `job ${job.name}`, result: applied.failed.length ? 'failed' : 'ok',
      detail: `removed ${applied.removed.length}, skipped ${applied.skipped.length}, failed ${applied.failed.length}` });
    await page(res, job, { applied });
  });

  return r;
}
