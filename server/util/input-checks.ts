/**
 * Checks of values people give (CLI, JSON API, pages), made on the value as given, before
 * anything normalises it: `a/../../b` or `/x/../etc` is refused, never silently turned into
 * another path. And the one way a refused value is quoted back: a short, escaped prefix.
 */
import { toDisplay, type BytePath } from './byte-path.js';

/** Longest part of a bad value an error message repeats. */
export const QUOTED_INPUT_MAX = 64;

/**
 * A value quoted for an error message: JSON-escaped (control characters, quotes, newlines
 * cannot reach a terminal or a log raw) and cut to its first QUOTED_INPUT_MAX characters.
 */
export function quoteInput(value: string): string {
  const chars = [...value];
  if (chars.length <= QUOTED_INPUT_MAX) return JSON.stringify(value);
  return `${JSON.stringify(chars.slice(0, QUOTED_INPUT_MAX).join(''))}… (${chars.length} characters)`;
}

/**
 * Whether a value that starts `YYYY-MM-DD` names a day of the calendar: Date.parse takes
 * `2026-02-30` as 2 March, so a day past the end of its month would silently mean another.
 */
export function isCalendarDay(value: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(value);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = new Date(Date.UTC(y, mo - 1, d));
  return t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d;
}

/** A day given as `YYYY-MM-DD` and nothing else, that the calendar has (not 2026-02-30, not 2026-13-45). */
export function isDay(value: string): boolean {
  return /^\d{4}-\d{2}-\d{2}$/.test(value) && isCalendarDay(value);
}

/**
 * Strict base64 of a path's bytes: only the standard alphabet, padded to a multiple of 4 (as
 * the CLI and API print it). Anything else (`!!!`, spaces, URL-safe letters) is null, where
 * Buffer.from would silently skip the bad characters and decode what is left.
 */
export function decodeBase64Path(v: string): BytePath | null {
  if (v.length % 4 !== 0 || !/^[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(v)) return null;
  const bytes = Buffer.from(v, 'base64');
  // Non-canonical spellings (unused bits set in the last character) do not round-trip.
  if (bytes.toString('base64') !== v) return null;
  return bytes.toString('latin1');
}

/**
 * A path inside a home chosen for a restore or download (bytes as latin1). Refused: empty
 * (it would mean the whole home: no path is how to say that), a NUL byte, `..` anywhere,
 * and a path that is the home itself once `.` and slashes are dropped. Null when fine.
 */
export function checkBytePathInput(p: BytePath): string | null {
  if (p === '') return 'a path may not be empty (give no path to choose the whole home)';
  if (p.includes('\0')) return 'a path may not contain a NUL byte';
  const parts = p.split('/');
  if (parts.includes('..')) return 'a path may not contain ".." components';
  if (parts.every((x) => x === '' || x === '.')) return 'this path is the whole home: give no path to choose the whole home';
  return null;
}

/** The same as a message naming the path (quoted short), or null. */
export function bytePathProblem(p: BytePath): string | null {
  const problem = checkBytePathInput(p);
  return problem === null ? null : `${problem}: ${quoteInput(toDisplay(p))}`;
}

/**
 * A local file or folder root gives (absolute or relative to the working directory): not
 * empty, no NUL byte, no `.` or `..` component. Lexical resolution of `..` and the kernel's
 * disagree once a component is a symlink, so such a path is refused, not normalised.
 */
export function localPathProblem(p: string): string | null {
  if (p === '') return 'a path may not be empty';
  if (p.includes('\0')) return 'a path may not contain a NUL byte';
  if (p.split('/').some((x) => x === '.' || x === '..')) return 'a path may not contain "." or ".." components (give the real path)';
  return null;
}

/** An absolute path root gives in the configuration or for a destination, checked as given. */
export function absolutePathProblem(p: string): string | null {
  if (!p.startsWith('/')) return 'must be an absolute path';
  return localPathProblem(p);
}

/** Longest error message answered whole (a message naming many things is cut, never a value echoed in full). */
const MESSAGE_MAX = 2000;

/**
 * An error message made safe to answer with when the values it may repeat are not known
 * (the JSON API): each run of 200 characters without a space becomes a quoted prefix, and
 * the whole is cut at MESSAGE_MAX characters.
 */
export function clipLongRuns(message: string): string {
  const out = message.replace(/\S{200,}/g, (run) => quoteInput(run));
  return out.length <= MESSAGE_MAX ? out : `${out.slice(0, MESSAGE_MAX)}… (message cut)`;
}
