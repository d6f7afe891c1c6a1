/**
 * Parsers of the CLI's option and argument values. Each refuses a malformed value with
 * commander's InvalidArgumentError, so every malformed command line ends in one place
 * (main's CommanderError branch) with exit code 2, before any state is opened.
 * Messages never repeat the value: commander quotes it, clipped by output.ts.
 */
import { InvalidArgumentError } from 'commander';
import { checkBytePathInput, decodeBase64Path, localPathProblem } from '../util/input-checks.js';
import { fromUtf8, type BytePath } from '../util/byte-path.js';

const refuse = (message: string): never => { throw new InvalidArgumentError(message); };

/** A whole number from `min` to `max` (digits only: no sign, exponent, fraction or spaces). */
export const wholeNumber = (min: number, max: number) => (v: string): number => {
  const n = /^\d{1,15}$/.test(v) ? Number(v) : Number.NaN;
  return n >= min && n <= max ? n : refuse(`a whole number from ${min} to ${max} is expected`);
};

/** A number of seconds (a fraction allowed) from `min` to `max`. */
export const seconds = (min: number, max: number) => (v: string): number => {
  const n = /^\d{1,9}(\.\d{1,6})?$/.test(v) ? Number(v) : Number.NaN;
  return n >= min && n <= max ? n : refuse(`a number of seconds from ${min} to ${max} is expected`);
};

/** A comma-separated list whose every element is one of `allowed` (spaces around commas allowed). */
export const listOf = (allowed: readonly string[]) => (v: string): string[] => {
  const items = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0 || items.some((i) => !allowed.includes(i))) refuse(`a comma-separated list of: ${allowed.join(', ')}`);
  return items;
};

/** `N` (a whole number of at least 1) or `all`. */
export const countOrAll = (v: string): number | 'all' => (v === 'all' ? 'all' : wholeNumber(1, 1_000_000)(v));

/** A time of day HH:MM. */
export const timeOfDay = (v: string): string => (/^([01]\d|2[0-3]):[0-5]\d$/.test(v) ? v : refuse('a time HH:MM (00:00 to 23:59) is expected'));

/** A path inside the home (restore, download): not empty, no `..`, not the whole home spelled out. */
export const homePath = (v: string, prev: BytePath[] = []): BytePath[] => [...prev, checked(fromUtf8(v))];

/** The same given as base64 of its bytes: strict base64, then the same rules. */
export const homePathBase64 = (v: string, prev: BytePath[] = []): BytePath[] => [...prev, checked(decoded(v))];

/** A folder inside the home (`snapshot files`): empty is the home itself; no `..`, no NUL. */
export const folderPath = (v: string): BytePath => folder(fromUtf8(v));

/** The same as base64: strict base64, then the same rules. */
export const folderBase64 = (v: string): BytePath => folder(decoded(v));

function folder(p: BytePath): BytePath {
  if (p.includes('\0')) refuse('a path may not contain a NUL byte');
  if (p.split('/').includes('..')) refuse('a path may not contain ".." components');
  return p;
}

/** A local file the CLI writes (download --out): checked as given, before anything resolves it. */
export const localFile = (v: string): string => {
  const problem = localPathProblem(v);
  return problem === null ? v : refuse(problem);
};

function decoded(v: string): BytePath {
  const p = decodeBase64Path(v);
  return p ?? refuse('base64 (A-Z a-z 0-9 + /, padded with =) is expected');
}

function checked(p: BytePath): BytePath {
  const problem = checkBytePathInput(p);
  return problem === null ? p : refuse(problem);
}
