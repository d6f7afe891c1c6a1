/**
 * The one family of Tidemark's errors: each carries a stable `code` that the surfaces map,
 * each in one place, to what they answer: the CLI to an exit code (cli/run.ts), the JSON API
 * to an HTTP status (app/api/errors.ts), the web pages to a status and a translated message
 * (app/web-errors.ts). The message stays the CLI's text; the code never changes with it.
 */
import { DestinationError } from '../destinations/types.js';

export const ERROR_CODES = [
  /** A malformed request: a missing, conflicting or ill-formed option or value. */
  'invalid-input',
  /** A well-formed request that cannot be done as asked. */
  'refused',
  /** The thing does not exist, or is not the caller's to see (both look the same). */
  'not-found',
  /** The provider's permissions or the thing's owner do not allow it. */
  'forbidden',
  /** The request clashes with the present state (a name taken, a thing in use, already ended). */
  'conflict',
  /** A backup or restore holds what the request needs: try again later. */
  'busy',
  'destination-unreachable', 'destination-not-writable', 'destination-no-space', 'destination-not-found',
  'destination-invalid', 'destination-insecure', 'destination-io',
  /** Anything else: a fault, not the caller's doing. */
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export class TidemarkError extends Error {
  constructor(message: string, readonly code: ErrorCode) {
    super(message);
    this.name = 'TidemarkError';
  }
}

// The codes of the errors thrown without one, from their messages (which are stable: tests assert them).
const NOT_FOUND = /^(no (destination|job|snapshot|task|API token)\b|unknown account\b|account "[^"]*" does not exist\b)/;
const BUSY = /is busy/;
const CONFLICT = /exists already|is in use|is used by job|is disabled|takes no new backups|exists on several destinations|several accounts have|has already ended|cannot be stopped halfway/;
const FORBIDDEN = /is not yours to/;

/** The code of a refusal thrown without one. */
export function codeOfMessage(message: string): ErrorCode {
  if (NOT_FOUND.test(message)) return 'not-found';
  if (BUSY.test(message)) return 'busy';
  if (CONFLICT.test(message)) return 'conflict';
  if (FORBIDDEN.test(message)) return 'forbidden';
  return 'refused';
}

/** The stable code of any error: a destination's failure by its kind, an unknown one `internal`. */
export function errorCodeOf(err: unknown): ErrorCode {
  if (err instanceof TidemarkError) return err.code;
  if (err instanceof DestinationError) return `destination-${err.code}`;
  return 'internal';
}
