import type { Context } from '../services/context.js';
import type { TaskRecord } from '../store/tasks.js';
import { queueOf, TaskCancelled } from './task-queue.js';
import { holderSafeMessage, logDetailForProvider } from '../services/holder-message.js';

export type TaskSpec = Pick<TaskRecord, 'type' | 'account' | 'destinationId'> & { snapshotId?: string | null; priority: number; params: Record<string, unknown> };

/**
 * Runs `work` as a task of the queue: it is listed at once, waits for its turn, and ends
 * completed (with `summary` of the result), failed (it threw, or `problem` names one) or
 * cancelled. `onTask` learns its id
 * before it waits.
 */
export async function runAsTask<T>(
  ctx: Context, spec: TaskSpec,
  work: (taskId: number, signal: AbortSignal) => Promise<T>,
  opts: { summary?: (r: T) => Record<string, unknown>; onTask?: (id: number) => void; problem?: (r: T) => string | null } = {},
): Promise<T> {
  const task = ctx.store.tasks.create({ ...spec, jobId: null, snapshotId: spec.snapshotId ?? null });
  opts.onTask?.(task.id);
  const queue = queueOf(ctx);
  const watch = queue.watch(task.id);
  try {
    await queue.waitForTurn(task.id);
    const result = await work(task.id, watch.signal);
    // Work that reports its own failure (a validation that could not connect) fails the task too.
    const problem = opts.problem?.(result) ?? null;
    ctx.store.tasks.finish(task.id, problem === null ? 'completed' : 'failed', opts.summary?.(result) ?? {}, problem);
    return result;
  } catch (err) {
    const message = (err as Error).message;
    // An account's task is its holder's to read: a provider's destination that failed names no
    // host or path there; the provider's log line keeps the detail (holderSafeMessage).
    const shown = spec.account === null ? message : holderSafeMessage(err, spec.destinationId === null ? null : ctx.store.destinations.byId(spec.destinationId));
    logDetailForProvider(ctx.store.tasks, task.id, err, message, shown);
    ctx.store.tasks.log(task.id, 'error', shown);
    ctx.store.tasks.finish(task.id, err instanceof TaskCancelled ? 'cancelled' : 'failed', {}, shown);
    throw err;
  } finally {
    watch.release();
    queue.nudge();
  }
}
