import type { BytePath } from '../util/byte-path.js';

/**
 * How a file name (arbitrary bytes) is shown to people, in pages, JSON and text alike.
 *
 * The rule: the display is readable for ordinary names and **injective** — two different
 * byte strings never give the same display — so a name with a newline never looks like
 * the one with a space, nor a Latin-1 "é" byte like the UTF-8 "é". Everything that would
 * be invisible, ambiguous or disruptive is written as an escape:
 *
 *   `\\`          a backslash itself (so every other `\` starts an escape)
 *   `\n` `\t` `\r` newline, tab, carriage return
 *   `\xHH`        one byte HH: a control byte below 0x20, DEL (0x7F), or a byte that is not
 *                 part of valid UTF-8 (0x80–0xFF)
 *   `\u{H…}`      a valid UTF-8 character that shows as nothing or as something else:
 *                 C1 controls, format characters (zero-width, bidirectional overrides),
 *                 line/paragraph separators, spaces other than U+0020, blank-looking
 *                 letters (Hangul fillers, braille blank), private-use and unassigned
 *                 characters, and combining marks in a name that is not in NFC (so the
 *                 decomposed "é" differs from the composed one)
 *   `\x20`        a space at the start or the end of a name (it would not be seen)
 *
 * `displayParts` gives the same text split into plain and escaped runs, so a page can
 * style the escapes (views use `displayNameHtml`); `displayName` joins them. The escapes
 * are the same in every language.
 */
export interface NamePart { text: string; escaped: boolean }

const hex2 = (n: number): string => n.toString(16).toUpperCase().padStart(2, '0');

/** Letters that render as blank space in common fonts. */
const BLANK_LETTERS = new Set([0x115f, 0x1160, 0x3164, 0xffa0, 0x2800, 0x180e]);
const HIDDEN = /^[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Zs}\p{Co}\p{Cn}]$/u;
const MARK = /^\p{M}$/u;

/** The code point of a valid UTF-8 sequence starting at `i`, and its length; null when the byte starts none. */
function decodeAt(b: Buffer, i: number): { cp: number; len: number } | null {
  const c = b[i]!;
  if (c < 0x80) return { cp: c, len: 1 };
  const len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (len === 0 || i + len > b.length) return null;
  let cp = c & (len === 2 ? 0x1f : len === 3 ? 0x0f : 0x07);
  for (let k = 1; k < len; k++) {
    const n = b[i + k]!;
    if ((n & 0xc0) !== 0x80) return null;
    cp = (cp << 6) | (n & 0x3f);
  }
  // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8.
  if ((len === 3 && cp < 0x800) || (len === 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff)) return null;
  return { cp, len };
}

/** Printable ASCII but the backslash, with no space at either end of the name or of a path part: shown as it is. */
const PLAIN_ASCII = /^(?:[!-[\]-~]|[!-[\]-~][ -[\]-~]*[!-[\]-~])$/;
const isPlain = (s: string): boolean => PLAIN_ASCII.test(s) && !s.includes(' /') && !s.includes('/ ');

/** The display of one name (or a path: `/` is shown as it is), in plain and escaped runs. */
export function displayParts(name: BytePath | Buffer): NamePart[] {
  // Most names are plain ASCII: no decoding needed (a large folder shows 100,000 of them).
  const latin1 = typeof name === 'string' ? name : null;
  if (latin1 !== null && isPlain(latin1)) return [{ text: latin1, escaped: false }];
  const b = latin1 !== null ? Buffer.from(latin1, 'latin1') : name as Buffer;
  if (latin1 === null && b.length > 0 && b.length < 4096) {
    const s = b.toString('latin1');
    if (isPlain(s)) return [{ text: s, escaped: false }];
  }
  const parts: NamePart[] = [];
  const push = (text: string, escaped: boolean): void => {
    const last = parts[parts.length - 1];
    if (last && last.escaped === escaped) last.text += text; else parts.push({ text, escaped });
  };
  const decoded = b.toString('utf8');
  const notNfc = decoded !== decoded.normalize('NFC');
  let i = 0;
  while (i < b.length) {
    const d = decodeAt(b, i);
    if (!d) { push(`\\x${hex2(b[i]!)}`, true); i++; continue; }
    const { cp, len } = d;
    const ch = String.fromCodePoint(cp);
    const edge = i === 0 || i + len === b.length || b[i - 1] === 0x2f || b[i + len] === 0x2f;
    if (cp === 0x5c) push('\\\\', true);
    else if (cp === 0x0a) push('\\n', true);
    else if (cp === 0x09) push('\\t', true);
    else if (cp === 0x0d) push('\\r', true);
    else if (cp < 0x20 || cp === 0x7f) push(`\\x${hex2(cp)}`, true);
    else if (cp === 0x20) push(edge ? '\\x20' : ' ', edge);
    else if (HIDDEN.test(ch) || BLANK_LETTERS.has(cp) || (notNfc && MARK.test(ch))) push(`\\u{${cp.toString(16).toUpperCase()}}`, true);
    else push(ch, false);
    i += len;
  }
  return parts;
}

/** The display of a name or path as one string (for JSON, text, attributes, messages). */
export const displayName = (name: BytePath | Buffer): string => {
  const parts = displayParts(name);
  return parts.length === 1 ? parts[0]!.text : parts.map((p) => p.text).join('');
};

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);

/**
 * The display as HTML (already escaped, for `<%-` in a view): escapes in `<span class="esc">`
 * so they stand apart from letters that happen to look like them.
 */
export const displayNameHtml = (name: BytePath | Buffer): string =>
  displayParts(name).map((p) => (p.escaped ? `<span class="esc">${escapeHtml(p.text)}</span>` : escapeHtml(p.text))).join('');
