import { isUtf8, type BytePath } from '../util/byte-path.js';
import { displayName } from './display-name.js';

/** RFC 5987 attr-char: what may stand unencoded in `filename*`. */
const ATTR_CHAR = /[A-Za-z0-9!#$&+\-.^_`|~]/;

const percentEncode = (s: string): string =>
  [...Buffer.from(s, 'utf8')].map((b) => (ATTR_CHAR.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');

/**
 * A Content-Disposition header for a file name of any bytes (RFC 6266 with the RFC 5987
 * `filename*`). The name is given exactly when it is UTF-8 without control characters;
 * otherwise as it is shown on the pages (display-name.ts), so a non-UTF-8 byte arrives as
 * `\xE9` rather than as a replacement character. `filename*` percent-encodes every byte
 * outside RFC 5987's attr-char and the quoted fallback holds printable ASCII other than `"`
 * and `\` only: no CR, LF or quote can ever end the header or start another.
 */
export function contentDisposition(name: BytePath, type: 'attachment' | 'inline' = 'attachment'): string {
  const exact = isUtf8(name) && !/[\x00-\x1f\x7f]/.test(name) ? Buffer.from(name, 'latin1').toString('utf8') : displayName(name);
  const fallback = displayName(name).replace(/[^\x20-\x7e]|["\\]/g, '_').slice(0, 200) || 'download';
  return `${type}; filename="${fallback}"; filename*=UTF-8''${percentEncode(exact)}`;
}
