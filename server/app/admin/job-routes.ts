import express from 'express';
import { UserError } from '../../services/context.js';
import { addJob, describeJob, editJob, removeJob, type EditJobInput } from '../../services/jobs.js';
import { runBackup } from '../../services/backups.js';
import { ITEMS, STRUCTURES, type JobRecord } from '../../store/jobs.js';
import { HttpError, notFound } from '../http-error.js';
import { actorOf } from '../session.js';
import { many } from '../path-param.js';
import { field, formErrors, noErrors, type FormErrors, type MessageRules } from './form-errors.js';
import { adminOnly, record, type ProviderState } from './state.js';

const FIELDS = ['name', 'destination', 'structure', 'accounts', 'items', 'excludes'] as const;
const RULES: MessageRules = [
  [/job named/, 'name'],
  [/destination/i, 'destination'],
  [/account/i, 'accounts'],
];

interface JobForm { name: string; destination: string; structure: string; scope: string; accounts: string[]; items: string[]; excludes: string }

function formOf(body: Record<string, unknown>): JobForm {
  return {
    name: field(body, 'name'), destination: field(body, 'destination'), structure: field(body, 'structure'),
    scope: field(body, 'scope') === 'list' ? 'list' : 'all',
    accounts: [...new Set(many(body.accounts).map((a) => a.trim()).filter(Boolean))],
    items: many(body.items),
    excludes: typeof body.excludes === 'string' ? body.excludes : '',
  };
}

const excludesOf = (text: string): string[] => text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);

function valuesOf(j: JobRecord): JobForm {
  return {
    name: j.name, destination: String(j.destinationId), structure: j.structure, scope: 'all' in j.accounts ? 'all' : 'list',
    accounts: 'all' in j.accounts ? [] : j.accounts.list, items: [...j.items], excludes: j.excludes.join('\n'),
  };
}

/** Jobs: list, add, change, run now, remove. Admins only. */
export function jobRoutes(st: ProviderState): express.Router {
  const { ctx } = st;
  const r = express.Router();
  r.use(adminOnly);

  const jobOf = (id: unknown): JobRecord => {
    const n = Number(id);
    const j = Number.isSafeInteger(n) ? ctx.store.jobs.byId(n) : null;
    if (!j) throw notFound();
    return j;
  };

  r.get('/', (_req, res) => {
    res.render('admin/jobs', {
      jobs: ctx.store.jobs.list().map((j) => ({ id: j.id, destinationId: j.destinationId, ...describeJob(ctx, j), run: st.backups.get(String(j.id)) })),
    });
  });

  const form = async (res: express.Response, job: JobRecord | null, values: JobForm, errors: FormErrors, status = 200): Promise<void> => {
    res.status(status).render('admin/job-form', {
      job, values, errors, structures: STRUCTURES, items: ITEMS,
      destinations: ctx.store.destinations.list().map((d) => ({ id: d.id, name: d.name, owner: d.owner, enabled: d.enabled })),
      accounts: (await ctx.panel(false).listAccounts()).map((a) => a.username),
    });
  };

  r.get('/new', async (_req, res) => {
    await form(res, null, { name: '', destination: '', structure: 'incremental', scope: 'all', accounts: [], items: ['files'], excludes: '' }, noErrors());
  });

  r.post('/', async (req, res) => {
    const values = formOf((req.body ?? {}) as Record<string, unknown>);
    const dest = ctx.store.destinations.byId(Number(values.destination));
    try {
      if (!dest) throw new UserError('destination: choose a destination');
      const j = await addJob(ctx, {
        name: values.name, destination: dest.name, structure: values.structure, items: values.items, excludes: excludesOf(values.excludes),
        ...(values.scope === 'all' ? { all: true } : { accounts: values.accounts }),
      }, actorOf(res), dest.owner);
      record(st, res, 'job.add', j.name, 'ok');
      res.redirect(303, '/admin/jobs');
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      await form(res, null, values, formErrors(err.message, FIELDS, RULES), 400);
    }
  });

  r.get('/:id/edit', async (req, res) => {
    const j = jobOf(req.params.id);
    await form(res, j, valuesOf(j), noErrors());
  });

  r.post('/:id/edit', async (req, res) => {
    const j = jobOf(req.params.id);
    const values = formOf((req.body ?? {}) as Record<string, unknown>);
    try {
      const dest = ctx.store.destinations.byId(Number(values.destination));
      if (!dest) throw new UserError('destination: choose a destination');
      const changes: EditJobInput = {
        name: values.name, structure: values.structure, items: values.items, excludes: excludesOf(values.excludes),
        ...(dest.id !== j.destinationId ? { destination: dest.name } : {}),
        ...(values.scope === 'all' ? { all: true } : { accounts: values.accounts, all: false }),
      };
      if (dest.id !== j.destinationId && dest.owner !== j.owner) throw new UserError(`destination: a job cannot move to a destination of another owner (${dest.owner})`);
      await editJob(ctx, j.name, changes, actorOf(res), j.owner);
      res.redirect(303, '/admin/jobs');
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      await form(res, j, values, formErrors(err.message, FIELDS, RULES), 400);
    }
  });

  r.post('/:id/run', (req, res) => {
    const j = jobOf(req.params.id);
    const d = ctx.store.destinations.byId(j.destinationId);
    if (!d?.enabled) throw new HttpError(409, 'error.refused', `destination "${d?.name ?? '?'}" is disabled`);
    const actor = actorOf(res);
    record(st, res, 'backup.requested', `job ${j.name}`, 'requested');
    st.backups.start(String(j.id), () => runBackup(ctx, j.name, undefined, actor, j.owner));
    res.redirect(303, '/admin/queue');
  });

  r.post('/:id/remove', (req, res) => {
    const j = jobOf(req.params.id);
    removeJob(ctx, j.name, actorOf(res), j.owner);
    record(st, res, 'job.remove', j.name, 'ok');
    res.redirect(303, '/admin/jobs');
  });

  return r;
}
