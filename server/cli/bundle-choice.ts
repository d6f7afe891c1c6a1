import fs from 'node:fs';

/**
 * Whether the bundle of the CLI (scripts/bundle.mjs) is to be run instead of the compiled
 * modules it was made from: only when it exists and is not older than the compiled entry. A
 * `tsc` run alone after the last `npm run build` leaves a stale bundle; the modules are then
 * newer, and they run.
 */
export function bundleIsCurrent(bundle: URL, compiledEntry: URL): boolean {
  try {
    return fs.statSync(bundle).mtimeMs >= fs.statSync(compiledEntry).mtimeMs;
  } catch {
    return false;
  }
}
