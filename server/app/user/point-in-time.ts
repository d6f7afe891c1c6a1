import express from 'express';
import type { Context } from '../../services/context.js';
import { UserError } from '../../services/context.js';
import { PermissionError, permissionsOf } from '../../services/permissions.js';
import { binlogServerStatus, databaseWindow, parseMoment, previewDatabaseAt, restoreDatabaseAtMoment, type AtInput } from '../../services/point-in-time.js';
import { HttpError, notFound } from '../http-error.js';
import { refusalOf } from '../web-errors.js';
import { actorOf } from '../session.js';

/** `YYYY-MM-DDTHH:MM` (UTC) of an ISO time, for a datetime-local input. */
const local = (iso: string): string => iso.slice(0, 16);
const DB_NAME = /^[^\0/\\.]{1,64}$/;

/**
 * The account holder's point-in-time pages: each database's covered window, a moment picked
 * within it, a preview (rows per table now and then), a confirmation, the restore as a task.
 */
export function pointInTimeRoutes(ctx: Context): express.Router {
  const r = express.Router();
  /** The account the page is about: an account holder's own. */
  const accountOf = (res: express.Response): string => {
    const actor = actorOf(res);
    if (actor.role !== 'user') throw notFound();
    return actor.name;
  };
  const asHttp = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof PermissionError) throw new HttpError(403, 'error.refused');
      if (err instanceof UserError) throw refusalOf(err);
      throw err;
    }
  };
  /** What the form says: the moment (UTC), the tables, how. */
  const inputOf = (req: express.Request, account: string): AtInput & { mode: string } => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    const database = String(req.params.database ?? '');
    if (!DB_NAME.test(database)) throw notFound();
    // parseMoment, not Date: 2026-02-30T10:00 would be 2 March and 24:00 the next day's midnight.
    let at: Date | null = null;
    if (typeof b.at === 'string' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(b.at)) {
      try { at = parseMoment(`${b.at}Z`); } catch { /* no such moment */ }
    }
    if (!at) throw new HttpError(400, 'error.badRequest');
    const tables = typeof b.tables === 'string' ? b.tables.split(',').map((t) => t.trim()).filter(Boolean) : [];
    const mode = b.mode === 'place' || b.mode === 'newTables' ? b.mode : 'place';
    return { account, database, at, ...(tables.length ? { tables } : {}), asNewTables: mode === 'newTables' && tables.length > 0, mode };
  };

  r.get('/databases', async (_req, res) => {
    const account = accountOf(res);
    const may = permissionsOf(ctx.config, actorOf(res)).restoreDatabases;
    const databases = [];
    for (const name of ctx.store.binlogs.databasesOf(account)) {
      let w: Awaited<ReturnType<typeof databaseWindow>>;
      try {
        w = await databaseWindow(ctx, actorOf(res), account, name);
      } catch (err) {
        // A database its dumps hold that is no longer the account's (the ownership rule) is not offered.
        if (err instanceof UserError && err.code === 'forbidden') continue;
        throw err;
      }
      databases.push({ name, from: w.from, to: w.to, fromInput: w.from ? local(w.from) : null, toInput: w.to ? local(w.to) : null, gaps: w.gaps.length });
    }
    let logBin = false;
    try { logBin = (await binlogServerStatus(ctx)).logBin; } catch { /* the server cannot be asked: shown as off */ }
    res.render('user/databases', { databases, logBin, may, intervalMinutes: ctx.config.binlogs.intervalMinutes });
  });

  r.post('/databases/:database/preview', async (req, res) => {
    const account = accountOf(res);
    const input = inputOf(req, account);
    const p = await asHttp(() => previewDatabaseAt(ctx, actorOf(res), input));
    res.render('user/database-preview', {
      database: input.database, at: local(p.moment), moment: p.moment, tables: p.tables, skipped: p.skipped,
      chosen: input.tables?.join(', ') ?? '', mode: input.mode,
    });
  });

  r.post('/databases/:database/restore', async (req, res) => {
    const account = accountOf(res);
    const input = inputOf(req, account);
    if (((req.body ?? {}) as Record<string, unknown>).confirm !== 'yes') throw new HttpError(400, 'error.badRequest');
    const task = await asHttp(() => new Promise<number>((resolve, reject) => {
      restoreDatabaseAtMoment(ctx, actorOf(res), input, resolve).catch(reject);
    }));
    res.redirect(303, `/tasks/${task}`);
  });

  return r;
}
