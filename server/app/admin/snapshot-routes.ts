import express from 'express';
import { UserError } from '../../services/context.js';
import { deleteSnapshot, describeSnapshot, filterSnapshots, listSnapshots, setSnapshotNote, type SnapshotQuery } from '../../services/snapshots.js';
import { setSnapshotLocked } from '../../services/retention.js';
import type { SnapshotRecord } from '../../store/snapshots.js';
import { notFound } from '../http-error.js';
import { actorOf } from '../session.js';
import { snapshotUrl } from '../user/routes.js';
import { field, formErrors, noErrors, type FormErrors } from './form-errors.js';
import type { ProviderState } from './state.js';
import { isDay } from '../../util/input-checks.js';

export const PAGE_SIZE = 25;
/** The statuses this version knows; others (from a newer version or another tool) are listed as they are. */
const KNOWN_STATUSES = ['completed', 'partial'];

const text = (v: unknown): string => (typeof v === 'string' ? v.trim() : '');

/** The filter as asked for in the address; what does not parse is left out (and shown as not set). */
function queryOf(q: Record<string, unknown>): { query: SnapshotQuery; values: Record<string, string>; page: number } {
  const base = { account: text(q.account), destination: text(q.destination), job: text(q.job), status: text(q.status), from: text(q.from), to: text(q.to) };
  const values: typeof base & { size?: string } = base;
  const query: SnapshotQuery = {};
  if (values.account !== '') query.account = values.account;
  if (/^\d+$/.test(values.destination)) query.destinationId = Number(values.destination); else values.destination = '';
  if (/^\d+$/.test(values.job)) query.jobId = Number(values.job); else values.job = '';
  if (/^[a-z-]{1,32}$/.test(values.status)) query.status = values.status; else values.status = '';
  // 2026-13-45 passes the pattern but is no day: left out like any other bad value (it was a 500).
  if (isDay(values.from)) query.from = values.from; else values.from = '';
  if (isDay(values.to)) query.to = values.to; else values.to = '';
  const page = /^\d{1,6}$/.test(text(q.page)) ? Math.max(1, Number(q.page)) : 1;
  // How many a page shows: kept in the links like the filter.
  if (/^\d{1,3}$/.test(text(q.size)) && Number(q.size) >= 1 && Number(q.size) <= 200) values.size = text(q.size);
  return { query, values, page };
}

const pageLink = (values: Record<string, string>, page: number): string => {
  const p = new URLSearchParams(Object.entries(values).filter(([, v]) => v !== ''));
  if (page > 1) p.set('page', String(page));
  const s = p.toString();
  return `/admin/snapshots${s ? `?${s}` : ''}`;
};

export const providerSnapshotUrl = (s: Pick<SnapshotRecord, 'destinationId' | 'account' | 'id'>): string =>
  `/admin/snapshots/${s.destinationId}/${encodeURIComponent(s.account)}/${encodeURIComponent(s.id)}`;

/**
 * The provider's snapshots: filtered and paged, each with lock, note and delete. An admin
 * sees them all; a reseller those of its accounts on destinations whose snapshots it sees
 * (services/snapshots.ts listSnapshots); everything else is "not found".
 */
export function snapshotRoutes(st: ProviderState): express.Router {
  const { ctx } = st;
  const r = express.Router();

  r.get('/', async (req, res) => {
    const actor = actorOf(res);
    const { query, values, page } = queryOf(req.query as Record<string, unknown>);
    const all = await listSnapshots(ctx, {}, actor);
    const found = filterSnapshots(all, query);
    const size = values.size ? Number(values.size) : PAGE_SIZE;
    const pages = Math.max(1, Math.ceil(found.length / size));
    const current = Math.min(page, pages);
    const destinations = new Map<number, string>();
    const jobs = new Map<number, string>();
    for (const s of all) {
      if (!destinations.has(s.destinationId)) destinations.set(s.destinationId, ctx.store.destinations.byId(s.destinationId)?.name ?? '?');
      if (s.jobId !== null && !jobs.has(s.jobId)) jobs.set(s.jobId, ctx.store.jobs.byId(s.jobId)?.name ?? '?');
    }
    res.render('admin/snapshots', {
      values, deleted: text(req.query.deleted), total: found.length, page: current, pages,
      prevUrl: current > 1 ? pageLink(values, current - 1) : null, nextUrl: current < pages ? pageLink(values, current + 1) : null,
      accounts: [...new Set(all.map((s) => s.account))].sort(),
      destinations: [...destinations].map(([id, name]) => ({ id, name })), jobs: [...jobs].map(([id, name]) => ({ id, name })),
      statuses: [...new Set([...KNOWN_STATUSES, ...all.map((s) => s.status)])],
      snapshots: found.slice((current - 1) * size, current * size).map((s) => ({ ...describeSnapshot(ctx, s), url: providerSnapshotUrl(s) })),
    });
  });

  const snapshotOf = async (res: express.Response, p: Record<string, string | undefined>): Promise<SnapshotRecord> => {
    const account = p.account ?? '';
    const s = (await listSnapshots(ctx, { account }, actorOf(res))).find((x) => String(x.destinationId) === p.destination && x.id === p.id);
    if (!s) throw notFound();
    return s;
  };

  const detail = (res: express.Response, s: SnapshotRecord, opts: { noteErrors?: FormErrors; note?: string; problem?: string; status?: number } = {}): void => {
    const actor = actorOf(res);
    const d = ctx.store.destinations.byId(s.destinationId);
    res.status(opts.status ?? 200).render('admin/snapshot', {
      s: describeSnapshot(ctx, s), url: providerSnapshotUrl(s), browseUrl: snapshotUrl(s),
      // A reseller's lock would keep its accounts' snapshots on the provider's storage without limit.
      mayLock: actor.role === 'admin' || d?.owner === actor.name,
      note: opts.note ?? s.note, noteErrors: opts.noteErrors ?? noErrors(), problem: opts.problem ?? null,
    });
  };

  r.get('/:destination/:account/:id', async (req, res) => { detail(res, await snapshotOf(res, req.params)); });

  for (const [verb, locked] of [['lock', true], ['unlock', false]] as const) {
    r.post(`/:destination/:account/:id/${verb}`, async (req, res) => {
      const s = await snapshotOf(res, req.params);
      try {
        setSnapshotLocked(ctx, s, locked, actorOf(res));
      } catch (err) {
        if (!(err instanceof UserError)) throw err;
        detail(res, s, { problem: err.message, status: 409 });
        return;
      }
      res.redirect(303, providerSnapshotUrl(s));
    });
  }

  r.post('/:destination/:account/:id/note', async (req, res) => {
    const s = await snapshotOf(res, req.params);
    const note = typeof (req.body as Record<string, unknown>)?.note === 'string' ? String((req.body as Record<string, unknown>).note) : '';
    try {
      await setSnapshotNote(ctx, s, note, actorOf(res));
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      detail(res, s, { note, noteErrors: formErrors(err.message.replace(/^text: /, 'note: '), ['note']), status: 400 });
      return;
    }
    res.redirect(303, providerSnapshotUrl(s));
  });

  const confirmPage = (res: express.Response, s: SnapshotRecord, problem: string | null, status = 200): void => {
    res.status(status).render('admin/snapshot-delete', { s: describeSnapshot(ctx, s), url: providerSnapshotUrl(s), problem });
  };

  r.get('/:destination/:account/:id/delete', async (req, res) => { confirmPage(res, await snapshotOf(res, req.params), null); });

  r.post('/:destination/:account/:id/delete', async (req, res) => {
    const s = await snapshotOf(res, req.params);
    // Only the confirmation page's own button deletes: a bare POST shows what would go.
    if (field((req.body ?? {}) as Record<string, unknown>, 'confirm') !== s.id) { confirmPage(res, s, null, 400); return; }
    try {
      await deleteSnapshot(ctx, s, actorOf(res));
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      confirmPage(res, s, err.message, 409);
      return;
    }
    res.redirect(303, `/admin/snapshots?deleted=${encodeURIComponent(s.id)}`);
  });

  return r;
}
