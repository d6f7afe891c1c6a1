import type { TaskRecord } from '../store/tasks.js';
import { UserError, type Context } from './context.js';

/**
 * Refuses to remove something a queued or running task works on: its snapshot would be
 * written and then have no job or destination to be listed under.
 */
export function refuseWhileBusy(ctx: Context, what: string, uses: (t: TaskRecord) => boolean): void {
  const busy = ctx.store.tasks.active().filter(uses);
  if (busy.length === 0) return;
  throw new UserError(`${what} is in use by ${busy.length === 1 ? 'task' : 'tasks'} ${busy.map((t) => `${t.id} (${t.type} of ${t.account ?? 'all accounts'}, ${t.status})`).join(', ')}: wait until ${busy.length === 1 ? 'it ends' : 'they end'} or cancel ${busy.length === 1 ? 'it' : 'them'}, then remove it`);
}
