import { normaliseRelative, type BytePath } from '../util/byte-path.js';
import { HttpError } from './http-error.js';

/**
 * Paths travel between page and daemon as base64url of their exact bytes, so a name
 * that is not UTF-8 can be chosen like any other.
 */
export const encodePath = (p: BytePath): string => Buffer.from(p, 'latin1').toString('base64url');

/** The path inside the home, or 403 for anything that is not a plain relative path (`..`, bad encoding). */
export function decodePath(value: unknown): BytePath {
  if (value === undefined || value === '') return '';
  if (typeof value !== 'string' || !/^[A-Za-z0-9_-]{1,8192}$/.test(value)) throw new HttpError(403, 'error.badPath');
  const raw = Buffer.from(value, 'base64url');
  if (raw.toString('base64url') !== value || raw.includes(0)) throw new HttpError(403, 'error.badPath');
  try {
    return normaliseRelative(raw.toString('latin1'));
  } catch {
    throw new HttpError(403, 'error.badPath');
  }
}

/** A form field that may be sent once, several times, or not at all. */
export function many(value: unknown): string[] {
  if (value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  if (list.length > 10000 || !list.every((v) => typeof v === 'string')) throw new HttpError(400, 'error.badRequest');
  return list as string[];
}
