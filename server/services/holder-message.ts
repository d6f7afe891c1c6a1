import { DestinationError } from '../destinations/types.js';
import { HookRefusal, hookSafeMessage } from '../hooks/runner.js';
import type { LogAudience } from '../store/tasks.js';
import { isAccountOwned } from './actor.js';

/** What an account holder reads of a provider's destination that failed, by its code. */
const PLAIN: Record<DestinationError['code'], string> = {
  'unreachable': 'the backup destination could not be reached',
  'not-writable': 'the backup destination refused the write',
  'no-space': 'the backup destination is full',
  'not-found': 'the backup destination is missing something it should hold',
  'invalid': 'the backup destination holds something Tidemark cannot use',
  'insecure': 'the backup destination is not safe to use as it is',
  'io': 'the backup destination failed to read or write',
};

/** The DestinationError an error is, or was made from (`cause`), if any. */
function destinationErrorIn(err: unknown): DestinationError | null {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = (e as Error & { cause?: unknown }).cause, depth++) {
    if (e instanceof DestinationError) return e;
  }
  return null;
}

/**
 * An error's message as it may be kept where an account holder reads it: the error and the
 * log lines of its tasks, the activity entries of its snapshots, the mail about its restores.
 * A provider's hook names no script there (hooks/runner.ts); a provider's destination that
 * failed names no host or path there (its message often does: "cannot reach backup@10.0.0.5:22",
 * "the destination path /srv/… does not exist"), only what kind of failure it was. The detail
 * is the provider's: its task log line (visibility 'provider') and root's own answer keep it.
 * A destination the account holder added itself keeps its own words (an SSH one already says
 * only ACCOUNT_CONNECT_FAILED of a failed connection).
 */
export function holderSafeMessage(err: unknown, destination: { owner: string } | null | undefined): string {
  const d = destinationErrorIn(err);
  if (d && !(destination && isAccountOwned(destination))) return `${PLAIN[d.code]} (the provider's log has the details)`;
  return hookSafeMessage(err);
}

/**
 * Where a task keeps `shown` (holderSafeMessage) instead of the error's own `detail`: the detail
 * goes into a provider-only line of its log. A hook's refusal is not logged again (runHooks did).
 */
export function logDetailForProvider(tasks: { log(id: number, level: 'info' | 'warn' | 'error', message: string, audience?: LogAudience): void },
  taskId: number, err: unknown, detail: string, shown: string, level: 'warn' | 'error' = 'error'): void {
  if (shown !== detail && !(err instanceof HookRefusal)) tasks.log(taskId, level, detail, 'provider');
}
