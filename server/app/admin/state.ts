import type express from 'express';
import type { Context } from '../../services/context.js';
import type { ValidationReport } from '../../services/destinations.js';
import type { ReindexReport } from '../../services/reindex.js';
import type { AccountBackupResult } from '../../services/backups.js';
import type { DestinationRecord } from '../../store/destinations.js';
import { actorOf } from '../session.js';
import { notFound } from '../http-error.js';
import { Background } from './background.js';
import { ProviderScope } from './provider-scope.js';

/** What the provider's routers share: the daemon's context and the work they started in the background. */
export interface ProviderState {
  ctx: Context;
  validations: Background<ValidationReport>;
  reindexes: Background<ReindexReport>;
  backups: Background<AccountBackupResult[]>;
}

export const newProviderState = (ctx: Context): ProviderState => ({
  ctx, validations: new Background(), reindexes: new Background(), backups: new Background(),
});

export const scopeOf = (st: ProviderState, res: express.Response): ProviderScope => new ProviderScope(st.ctx, actorOf(res));

/** An activity entry in the name of the signed-in person. */
export function record(st: ProviderState, res: express.Response, action: string, target: string, result: string, detail = ''): void {
  const a = actorOf(res);
  st.ctx.store.activity.record({ actor: a.name, role: a.role, action, target, result, detail });
}

/** Pages only an admin has (destinations' settings, jobs): to a reseller they do not exist. */
export const adminOnly: express.RequestHandler = (_req, res, next) => { next(actorOf(res).role === 'admin' ? undefined : notFound()); };

export function destinationOf(st: ProviderState, id: unknown): DestinationRecord {
  const n = Number(id);
  const d = Number.isSafeInteger(n) ? st.ctx.store.destinations.byId(n) : null;
  if (!d) throw notFound();
  return d;
}
