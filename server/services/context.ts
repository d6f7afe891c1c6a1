import { loadConfig, resolveDataDir, type Config } from '../config.js';
import { openStore, type Store } from '../store/index.js';
import { createPanelAdapter } from '../panels/index.js';
import type { PanelAdapter } from '../panels/types.js';
import { isProcessAlive } from '../util/process-alive.js';
import { codeOfMessage, TidemarkError, type ErrorCode } from './errors.js';

export interface Context {
  dataDir: string;
  config: Config;
  store: Store;
  /** The panel's accounts; `withDatabases: false` never contacts MySQL. */
  panel(withDatabases: boolean): PanelAdapter;
  close(): void;
}

/**
 * An error caused by what the caller asked for: shown as it is, no stack. Its code, when not
 * given, follows from its message (services/errors.ts); a malformed request is 'invalid-input'.
 */
export class UserError extends TidemarkError {
  constructor(message: string, code: ErrorCode = codeOfMessage(message)) {
    super(message, code);
    this.name = 'UserError';
  }
}

export async function openContext(dataDirOption?: string): Promise<Context> {
  const dataDir = resolveDataDir(dataDirOption);
  const config = await loadConfig(dataDir);
  const store = await openStore(dataDir);
  store.tasks.failOrphans(isProcessAlive);
  const panel = (withDatabases: boolean): PanelAdapter => {
    // The config of now: the settings pages replace ctx.config while the daemon runs.
    const adapter: PanelAdapter = createPanelAdapter(ctx.config, {
      listDatabasesByPrefix: withDatabases
        ? async (prefix: string) => {
          const { listDatabasesByPrefix } = await import('../engine/database/discover.js');
          return listDatabasesByPrefix(await adapter.mysqlCredentials(), prefix);
        }
        : async () => ({ databases: [], users: [] }),
    });
    return adapter;
  };
  const ctx: Context = { dataDir, config, store, panel, close: () => store.close() };
  return ctx;
}
