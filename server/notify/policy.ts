import type { NotificationsConfig } from '../config-schema.js';

export type Outcome = 'completed' | 'partial' | 'failed';
export type NotifyPolicy = Pick<NotificationsConfig, 'on' | 'success'>;

/**
 * Whether a result is worth a message. `history` holds the outcomes of the earlier runs of the
 * same job for the same account, newest first. A partial run counts as a success here: it made
 * a snapshot, and it ends a streak of failures.
 */
export function shouldNotify(history: readonly Outcome[], result: Outcome, policy: NotifyPolicy): boolean {
  if (result !== 'failed') return policy.success || policy.on === 'always';
  if (policy.on !== 'second-failure') return true;
  let streak = 1;
  for (const h of history) {
    if (h !== 'failed') break;
    streak++;
  }
  // Exactly the second: a job that keeps failing does not mail every run (the daily summary lists it).
  return streak === 2;
}
