import { errorCodeOf, TidemarkError, type ErrorCode } from '../services/errors.js';
import { clipLongRuns } from '../util/input-checks.js';
import { HttpError } from './http-error.js';

/**
 * The status and translated message (views/locales) of each error code (services/errors.ts)
 * on the web pages, the only place they are chosen. `detail`: whether the error's own message
 * is shown under the translated one; never for a destination's failure (an account holder
 * must not read the provider's hosts and paths) nor for what is not found or unforeseen.
 */
const WEB_ERRORS: Record<ErrorCode, { status: number; key: string; detail: boolean }> = {
  'invalid-input': { status: 400, key: 'error.invalidInput', detail: true },
  refused: { status: 400, key: 'error.refused', detail: true },
  'not-found': { status: 404, key: 'error.notFound', detail: false },
  forbidden: { status: 403, key: 'error.forbidden', detail: true },
  conflict: { status: 409, key: 'error.conflict', detail: true },
  busy: { status: 409, key: 'error.busy', detail: true },
  'destination-unreachable': { status: 500, key: 'error.destination', detail: false },
  'destination-not-writable': { status: 500, key: 'error.destination', detail: false },
  'destination-no-space': { status: 500, key: 'error.destination', detail: false },
  'destination-not-found': { status: 500, key: 'error.destination', detail: false },
  'destination-invalid': { status: 500, key: 'error.destination', detail: false },
  'destination-insecure': { status: 500, key: 'error.destination', detail: false },
  'destination-io': { status: 500, key: 'error.destination', detail: false },
  internal: { status: 500, key: 'error.internal', detail: false },
};

/** The page's answer to an error no route turned into an HttpError of its own. */
export function webErrorOf(err: unknown): HttpError {
  const w = WEB_ERRORS[errorCodeOf(err)];
  // A refused value is never answered back whole (see util/input-checks.ts).
  return new HttpError(w.status, w.key, w.detail && err instanceof TidemarkError ? clipLongRuns(err.message) : '');
}

/**
 * The answer of a page's action to a refusal of the services: as webErrorOf, except that a
 * plain refusal is 409 (the request was understood, the state of things says no), as those
 * actions have always answered it, with `key` as its message; its reason clipped as every
 * other detail is.
 */
export function refusalOf(err: TidemarkError, key = 'error.refused'): HttpError {
  return err.code === 'refused' ? new HttpError(409, key, clipLongRuns(err.message)) : webErrorOf(err);
}
