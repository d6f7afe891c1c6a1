import v8 from 'node:v8';
import vm from 'node:vm';

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

/**
 * A full collection after every `everyBytes` of content a batch run has passed on, in a
 * process of its own (a command-line run, an account's worker; null in the daemon, whose
 * heap holds its pages too).
 *
 * A restore passes hundreds of MB of Buffers through a small heap. The ones held for a
 * while (files read ahead, files being written by pool jobs) outlive two young collections
 * and reach the old generation, where only a full collection frees them; V8 starts one only
 * when external memory has grown about 64 MB since the last. That dead memory was a third of
 * a restore's peak from SSH (root 196 MiB and writer 131 MiB, over the 300 MB goal together).
 * A full collection of such a heap (10-30 MB live) takes a few milliseconds.
 */
export function contentTurnover(everyBytes: number, ownProcess = processWide): ((bytes: number) => void) | null {
  if (!ownProcess) return null;
  let collect: (() => void) | null = null;
  try {
    v8.setFlagsFromString('--expose-gc');
    collect = vm.runInNewContext('gc') as () => void;
  } catch {
    return null;
  }
  if (typeof collect !== 'function') return null;
  const gc = collect;
  let since = 0;
  return (bytes) => {
    since += bytes;
    if (since < everyBytes) return;
    since = 0;
    gc();
  };
}
