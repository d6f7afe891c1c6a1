import { prestartAccountWorker } from '../engine/worker/spawn-worker.js';
import { workerTakesPoliteness } from '../util/politeness.js';
import { commandNamed, globalOptionValue } from './command-table.js';

/**
 * `tidemark backup`: the account worker's process is started now, before the command's
 * modules load and the state store opens, so that its own start-up (a second Node process)
 * runs meanwhile on another core instead of after them. It waits for root to name the
 * account (spawn-worker.ts). Where it takes its politeness itself, with the account, it starts
 * at once; otherwise it starts under the configured one, read here first.
 */
export async function prestartWorkers(args: readonly string[]): Promise<void> {
  if (commandNamed(args) !== 'backup' || args.includes('--help') || args.includes('-h')) return;
  if (workerTakesPoliteness()) {
    prestartAccountWorker();
    return;
  }
  try {
    const { loadConfig, resolveDataDir } = await import('../config.js');
    const config = await loadConfig(resolveDataDir(globalOptionValue(args, '--data-dir')));
    prestartAccountWorker(config.queue);
  } catch {
    // The command itself reports an unreadable config; it then starts no worker anyway.
  }
}
