import { createRequire } from 'node:module';
import type picomatchType from 'picomatch';
import { fromUtf8, type BytePath } from '../../util/byte-path.js';

export const MARKER_FILE = '.donotbackup';
export const SKIPPED_DIR_NAME = 'donotbackup';

/**
 * Exclude globs, matched on the bytes of the path relative to the home. A pattern
 * without '/' matches a name at any depth (like tar's --exclude); one with '/' matches
 * from the top of the home. An excluded directory takes everything below it.
 */
export function makeExcluder(globs: string[]): (relPath: BytePath) => boolean {
  if (globs.length === 0) return () => false;
  // Loaded only for a job with excludes: every account's worker starts without it.
  const picomatch = createRequire(import.meta.url)('picomatch') as typeof picomatchType;
  const matchers = globs.map((g) => {
    const pattern = fromUtf8(g.replace(/^\/+/, '').replace(/\/+$/, ''));
    return picomatch(pattern, { dot: true, basename: !pattern.includes('/') });
  });
  return (relPath) => matchers.some((m) => m(relPath));
}
