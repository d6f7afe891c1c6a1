import express from 'express';
import { activityCsv, type ActivityRecord } from '../../store/activity.js';
import { visibleActivity } from '../../services/activity.js';
import { noErrors, type FormErrors } from './form-errors.js';
import { scopeOf, type ProviderState } from './state.js';
import { ActivityReader } from './activity-view.js';
import { isDay } from '../../util/input-checks.js';

const LIMIT = 2000;

export interface ActivityFilter { actor: string; action: string; result: string; from: string; to: string }

const text = (v: unknown): string => (typeof v === 'string' ? v.trim().slice(0, 200) : '');

/** A day as the form sends it (YYYY-MM-DD), or an error for that field. */
function dayOf(v: string, field: string, errors: FormErrors): string | null {
  if (v === '') return null;
  if (!isDay(v)) { errors.fields[field] = 'YYYY-MM-DD'; return null; }
  return v;
}

/** The activity log (who, what, when, on what, with what result), filterable, and as CSV. */
export function activityRoutes(st: ProviderState): express.Router {
  const { ctx } = st;
  const r = express.Router();

  const query = async (res: express.Response, f: ActivityFilter, errors: FormErrors): Promise<ActivityRecord[]> => {
    const where: string[] = [];
    const args: string[] = [];
    if (f.actor) { where.push('actor = ?'); args.push(f.actor); }
    if (f.action) { where.push('action = ?'); args.push(f.action); }
    if (f.result) { where.push('result = ?'); args.push(f.result); }
    const from = dayOf(f.from, 'from', errors);
    const to = dayOf(f.to, 'to', errors);
    if (from) { where.push('at >= ?'); args.push(`${from}T00:00:00.000Z`); }
    // The whole of the last day.
    if (to) { where.push('at < ?'); args.push(new Date(Date.parse(`${to}T00:00:00Z`) + 86_400_000).toISOString()); }
    const rows = ctx.store.db.prepare(`SELECT * FROM activity ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`)
      .all(...args, LIMIT) as ActivityRecord[];
    // A reseller: its own actions, and what happened to snapshots it may see.
    return visibleActivity(ctx, scopeOf(st, res).actor, rows);
  };

  r.get('/', async (req, res) => {
    const f: ActivityFilter = { actor: text(req.query.actor), action: text(req.query.action), result: text(req.query.result), from: text(req.query.from), to: text(req.query.to) };
    const errors = noErrors();
    const entries = await query(res, f, errors);
    if (req.query.format === 'csv' && Object.keys(errors.fields).length === 0) {
      res.type('text/csv; charset=utf-8').attachment('tidemark-activity.csv').send(activityCsv(entries));
      return;
    }
    const distinct = (col: string): string[] => (ctx.store.db.prepare(`SELECT DISTINCT ${col} AS v FROM activity ORDER BY v`).all() as { v: string }[]).map((x) => x.v);
    const unfiltered = scopeOf(st, res).isAdmin ? null : await query(res, { actor: '', action: '', result: '', from: '', to: '' }, noErrors());
    const seen = unfiltered && new Set(unfiltered.map((e) => e.actor));
    const csv = new URLSearchParams({ ...Object.fromEntries(Object.entries(f).filter(([, v]) => v !== '')), format: 'csv' }).toString();
    const sc = scopeOf(st, res);
    const reader = new ActivityReader(ctx, sc.isAdmin, (await sc.accounts()).map((a) => a.username));
    res.status(Object.keys(errors.fields).length ? 400 : 200).render('admin/activity', {
      entries: entries.map((e) => reader.read(e)), filter: f, errors, csvUrl: `/admin/activity?${csv}`,
      // A reseller chooses among what it may see: other people's names and doings stay out of the lists.
      actors: seen ? [...seen].sort() : distinct('actor'),
      actions: unfiltered ? [...new Set(unfiltered.map((e) => e.action))].sort() : distinct('action'),
      results: unfiltered ? [...new Set(unfiltered.map((e) => e.result))].sort() : distinct('result'),
    });
  });

  return r;
}
