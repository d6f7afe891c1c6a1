import type { Response } from 'express';
import { errorCodeOf, type ErrorCode } from '../../services/errors.js';
import { NotInSnapshotError } from '../../engine/selection.js';

/** An answer of the API that is not the usual 400 for the caller's input. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'ApiError';
  }
}

/**
 * The HTTP status of each error code (services/errors.ts), the only place they are chosen:
 * what does not exist (or is not the caller's to see) is 404, a clash with the present state
 * 409, a refusal by the provider's permissions 403, any other refusal of the input 400; a
 * destination's failure and anything unforeseen 500 (logged, never shown).
 */
const API_STATUS: Record<ErrorCode, number> = {
  'invalid-input': 400, refused: 400,
  'not-found': 404,
  forbidden: 403,
  conflict: 409, busy: 409,
  'destination-unreachable': 500, 'destination-not-writable': 500, 'destination-no-space': 500, 'destination-not-found': 500,
  'destination-invalid': 500, 'destination-insecure': 500, 'destination-io': 500,
  internal: 500,
};

/** The HTTP status for an error of the services, whose messages are the CLI's. */
export function statusOf(err: unknown): number {
  if (err instanceof ApiError) return err.status;
  return API_STATUS[errorCodeOf(err)];
}

/**
 * Streams a .tar.gz answer. Once bytes went out, a cut connection is the only honest answer
 * to a failure: never a short archive that looks whole.
 */
export async function sendGzip(res: Response, filename: string, write: (out: Response) => Promise<unknown>): Promise<void> {
  res.status(200).set({ 'Content-Type': 'application/gzip', 'Content-Disposition': `attachment; filename="${filename}"` });
  try {
    await write(res);
  } catch (err) {
    if (res.headersSent) { res.destroy(); return; }
    for (const h of ['Content-Type', 'Content-Disposition']) res.removeHeader(h);
    // A path or database the snapshot does not hold is the asker's mistake, not the destination's.
    if (err instanceof NotInSnapshotError) throw new ApiError(404, (err as Error).message);
    throw new ApiError(502, `download failed: ${(err as Error).message}`);
  }
}
