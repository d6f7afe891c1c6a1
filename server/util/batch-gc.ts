import v8 from 'node:v8';

/**
 * V8's incremental marking, off while batch work runs in a process that otherwise keeps it.
 *
 * A backup's root side keeps a small live heap (10-20 MB) while hundreds of MB of Buffers
 * pass through it; just above V8's activation threshold, incremental marking starts again
 * right after every full GC. Command-line runs turn it off for their whole life
 * (cli/gc-policy.ts). The daemon runs queued backups in-process and keeps V8's default for
 * its pages, so it turns marking off only while at least one backup runs: a first backup of
 * 20,000 files then made 1 full GC instead of about 10. V8 reads the flag each time it would
 * start marking, so the change takes effect at once; a marking already under way finishes.
 */
let processWide = false;
let holders = 0;

/** The whole process runs without incremental marking (a command-line run): holds change nothing. */
export function batchGcForProcess(): void {
  processWide = true;
  v8.setFlagsFromString('--no-incremental-marking');
}

/** Incremental marking off until the returned function is called (counted: the last release turns it on again). */
export function holdBatchGc(): () => void {
  if (processWide) return () => {};
  if (holders++ === 0) v8.setFlagsFromString('--no-incremental-marking');
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--holders === 0 && !processWide) v8.setFlagsFromString('--incremental-marking');
  };
}
