/** A refusal or failure shown to the browser: `key` is the translated message, `detail` an optional untranslated reason. */
export class HttpError extends Error {
  constructor(readonly status: number, readonly key: string, readonly detail = '') {
    super(`${status} ${key}${detail ? `: ${detail}` : ''}`);
    this.name = 'HttpError';
  }
}

export const notFound = (): HttpError => new HttpError(404, 'error.notFound');
