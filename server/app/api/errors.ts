import { UserError } from '../../services/context.js';
import { PermissionError } from '../../services/permissions.js';

/** An answer of the API that is not the usual 400 for the caller's input. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'ApiError';
  }
}

const NOT_FOUND = /^(no (destination|job|snapshot|task|API token)\b|unknown account\b|account "[^"]*" does not exist\b)/;
const CONFLICT = /exists already|is in use|is used by job|is disabled|takes no new backups|is busy|exists on several destinations|several accounts have|has already ended|cannot be stopped halfway/;
const FORBIDDEN = /is not yours to/;

/**
 * The HTTP status for an error of the services, whose messages are the CLI's: what does
 * not exist (or is not the caller's to see) is 404, a clash with the present state 409,
 * a refusal by the provider's permissions 403, any other refusal of the input 400.
 */
export function statusOf(err: unknown): number {
  if (err instanceof ApiError) return err.status;
  if (err instanceof PermissionError) return 403;
  if (err instanceof UserError) {
    if (NOT_FOUND.test(err.message)) return 404;
    if (CONFLICT.test(err.message)) return 409;
    if (FORBIDDEN.test(err.message)) return 403;
    return 400;
  }
  return 500;
}
