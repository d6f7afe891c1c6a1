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
  return commandNamed(args) === 'serve' ? [] : ['--no-incremental-marking'];
}

export function applyGcPolicy(args: readonly string[]): void {
  if (gcFlagsFor(args).includes('--no-incremental-marking')) batchGcForProcess();
}
