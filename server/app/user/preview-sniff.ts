/**
 * What a file's first bytes say it is, for the preview. Only four raster image types are
 * ever sent as images (their signatures, never the name); everything else is text or
 * nothing. HTML and SVG are text here: the preview shows their source, escaped, and never
 * lets a browser render them.
 */
export type Sniffed = { kind: 'image'; type: 'image/png' | 'image/jpeg' | 'image/gif' | 'image/webp' } | { kind: 'text' } | { kind: 'binary' };

const starts = (b: Buffer, sig: number[], at = 0): boolean => b.length >= at + sig.length && sig.every((x, i) => b[at + i] === x);

export function sniff(head: Buffer): Sniffed {
  if (starts(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { kind: 'image', type: 'image/png' };
  if (starts(head, [0xff, 0xd8, 0xff])) return { kind: 'image', type: 'image/jpeg' };
  if (starts(head, [0x47, 0x49, 0x46, 0x38]) && (head[4] === 0x37 || head[4] === 0x39) && head[5] === 0x61) return { kind: 'image', type: 'image/gif' };
  if (starts(head, [0x52, 0x49, 0x46, 0x46]) && starts(head, [0x57, 0x45, 0x42, 0x50], 8)) return { kind: 'image', type: 'image/webp' };
  // Text: no NUL, and control bytes (other than tab, newline, form feed, carriage return, escape) rare.
  if (head.includes(0)) return { kind: 'binary' };
  let odd = 0;
  for (const b of head) if ((b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0c && b !== 0x0d && b !== 0x1b) || b === 0x7f) odd++;
  return odd * 100 > head.length ? { kind: 'binary' } : { kind: 'text' };
}

/**
 * The text of a preview: UTF-8 when it is (a character cut at the end of the sample is
 * dropped), otherwise each byte as Latin-1, so any file shows something readable.
 */
export function previewText(head: Buffer, cut: boolean): { text: string; encoding: 'utf-8' | 'latin1' } {
  let b = head;
  if (cut) {
    // Drop a partial UTF-8 sequence at the end of the sample.
    let i = b.length - 1;
    let back = 0;
    while (i >= 0 && back < 3 && (b[i]! & 0xc0) === 0x80) { i--; back++; }
    if (i >= 0 && b[i]! >= 0xc0) {
      const need = b[i]! >= 0xf0 ? 4 : b[i]! >= 0xe0 ? 3 : 2;
      if (b.length - i < need) b = b.subarray(0, i);
    }
  }
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(b), encoding: 'utf-8' };
  } catch {
    return { text: b.toString('latin1'), encoding: 'latin1' };
  }
}
