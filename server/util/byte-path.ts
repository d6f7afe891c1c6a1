/**
 * Paths inside an account are arbitrary bytes (not necessarily UTF-8). Inside the
 * engine they travel as "byte strings": JS strings where every char code is one byte
 * (latin1). This keeps them usable as Map keys and sortable, and converts losslessly
 * to the Buffers that `fs` accepts.
 */
export type BytePath = string;

export const toBuffer = (p: BytePath): Buffer => Buffer.from(p, 'latin1');

/** A user-typed (UTF-8) path or glob turned into the byte-string form. */
export const fromUtf8 = (s: string): BytePath => Buffer.from(s, 'utf8').toString('latin1');

/** Text for people and JSON: exact when the bytes are UTF-8, replacement chars otherwise. */
export const toDisplay = (p: BytePath): string => Buffer.from(p, 'latin1').toString('utf8');

export const isUtf8 = (p: BytePath): boolean => {
  const b = Buffer.from(p, 'latin1');
  return Buffer.from(b.toString('utf8'), 'utf8').equals(b);
};

/** Normalise a relative path given by a person: no leading/trailing slash, no `.`/`..`/empty parts. */
export function normaliseRelative(p: BytePath): BytePath {
  const parts = p.split('/').filter((x) => x !== '' && x !== '.');
  if (parts.some((x) => x === '..')) throw new Error(`path may not contain "..": ${toDisplay(p)}`);
  return parts.join('/');
}

/** True when `p` is `prefix` itself or lies below it (both normalised, '' = everything). */
export const isWithin = (p: BytePath, prefix: BytePath): boolean =>
  prefix === '' || p === prefix || p.startsWith(prefix + '/');

export const parentOf = (p: BytePath): BytePath => {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
};
