import { DestinationError } from './types.js';

/** Turns a system error into a DestinationError a provider can act on. */
export function describeFsError(err: unknown, what: string): DestinationError {
  // A driver's own error already says what happened, and where.
  if (err instanceof DestinationError) return err;
  const e = err as NodeJS.ErrnoException;
  switch (e?.code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new DestinationError(`no space left on the destination while writing ${what}`, 'no-space');
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new DestinationError(`the destination is not writable (${e.code}) at ${what}`, 'not-writable');
    case 'ELOOP':
      return new DestinationError(`a symbolic link was found on the destination at ${what}: Tidemark never follows links under a destination root`, 'insecure');
    case 'ENOENT':
      return new DestinationError(`not found on the destination: ${what}`, 'not-found');
    default:
      return new DestinationError(`destination I/O error at ${what}: ${e?.message ?? String(err)}`, 'io');
  }
}
