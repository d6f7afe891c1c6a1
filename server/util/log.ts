import pino from 'pino';

/** JSON logs of the daemon on stderr. Secrets are never passed to it; `redact` is a second line of defence. */
export function createLogger(level: string): pino.Logger {
  return pino({ level, redact: ['password', '*.password', 'passphrase', '*.passphrase', 'privateKey', '*.privateKey'] }, pino.destination(2));
}
