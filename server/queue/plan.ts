import type { TaskRecord, TaskType } from '../store/tasks.js';

export interface QueueLimits {
  maxBackups: number;
  maxTasksPerDestination: number;
}

type Slot = Pick<TaskRecord, 'type' | 'account' | 'destinationId'>;

/**
 * Read-only work someone is waiting for on a page (a download streams to the browser, a
 * validation is a quick probe): recorded and shown like any task, held back by nothing.
 */
const INTERACTIVE = new Set<TaskType>(['download', 'validate']);

/** Whether `t` may run beside the tasks in `busy`: one task per account, and the two limits. */
export function fits(t: Slot, busy: readonly Slot[], limits: QueueLimits): boolean {
  if (INTERACTIVE.has(t.type)) return true;
  if (t.account !== null && busy.some((b) => b.account === t.account && !INTERACTIVE.has(b.type))) return false;
  if (t.type === 'backup' && busy.filter((b) => b.type === 'backup').length >= limits.maxBackups) return false;
  if (t.destinationId !== null && busy.filter((b) => b.destinationId === t.destinationId && !INTERACTIVE.has(b.type)).length >= limits.maxTasksPerDestination) return false;
  return true;
}

/**
 * The tasks that start now. `queued` is in queue order (priority, then age); each one that
 * fits takes its slot, so a later task never goes before an earlier one it would compete
 * with. Tasks of other processes take their slot too but are started by their own process;
 * `startable` says which ones this process starts.
 */
export function tasksToStart<T extends Slot>(queued: readonly T[], running: readonly Slot[], limits: QueueLimits, startable: (t: T) => boolean): T[] {
  const busy: Slot[] = [...running];
  const start: T[] = [];
  for (const q of queued) {
    if (!fits(q, busy, limits)) continue;
    busy.push(q);
    if (startable(q)) start.push(q);
  }
  return start;
}
