import v8 from 'node:v8';
import { batchGcForProcess } from '../util/batch-gc.js';
import { commandNamed } from './command-table.js';

/**
 * The V8 flags a command-line run sets for itself (none for the daemon, `serve`).
 *
 * A CLI run's heap stays small (8-10 MB live) while hundreds of MB of Buffers pass through it.
 * Just above V8's 8 MB activation threshold, with the old generation's limit only as far above
 * the live size as the new space is large, V8's task-started incremental marking begins again
 * right after each full GC: a first backup of 20,000 files over SSH ran 161 mark-compacts, one
 * every 50-100 ms, a quarter of the process's CPU with their helper threads. Without
 * incremental marking a full GC runs when the old generation reaches that same limit (so the
 * peak is the same), atomically: a batch command has no latency to protect. The daemon, which
 * answers pages, keeps V8's default and turns it off only while it runs backups (holdBatchGc).
 */
export function gcFlagsFor(args: readonly string[]): string[] {
  const command = commandNamed(args);
  if (command === 'serve') return [];
  return command === 'restore' ? ['--no-incremental-marking', RESTORE_COMPILE_FLAG] : ['--no-incremental-marking'];
}

/**
 * A restore run from the command line also runs without V8's optimizing compiler
 * (interpreter and baseline code only), as its writer does (spawn-worker.ts). Its JavaScript
 * is a few short loops per index entry (read, map the owner, encode, send); the bytes are
 * read, checked and written elsewhere (by the writer's pool). In a restore into a new folder
 * of 20,000 files TurboFan's threads compiled for about 0.3 s of CPU, and the optimized code
 * did not win it back: root and writer together, incremental as root, 5.6 -> 5.0 CPU-s (mean
 * of 6 interleaved pairs, /usr/bin/time); over the three structures, as root and as the
 * account, 68.3 -> 64.0 CPU-s in 13 interleaved pairs, lower in 9. V8 reads the flag each time it would optimize a
 * function, so setting it at run time takes effect at once.
 */
const RESTORE_COMPILE_FLAG = '--max-opt=1';

export function applyGcPolicy(args: readonly string[]): void {
  const flags = gcFlagsFor(args);
  if (flags.includes('--no-incremental-marking')) batchGcForProcess();
  if (flags.includes(RESTORE_COMPILE_FLAG)) v8.setFlagsFromString(RESTORE_COMPILE_FLAG);
}
