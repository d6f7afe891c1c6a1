import type { Command } from 'commander';
import { openContext, UserError } from '../../services/context.js';
import { wholeNumber } from '../option-values.js';
import { globals } from '../common.js';

/** serve: the daemon (web pages and JSON API). */
export function register(program: Command): void {
  program.command('serve')
    .description('run the daemon: web pages and JSON API')
    .option('--port <port>', 'HTTP port on 127.0.0.1 (0: none)', wholeNumber(0, 65535))
    .action(async (opts: { port?: number }, cmd: Command) => {
      const g = globals(cmd);
      if (g.asAccount !== undefined || g.owner !== undefined) throw new UserError('--as-account and --owner do not apply to serve', 'invalid-input');
      const ctx = await openContext(g.dataDir);
      // Loaded only here: Express is not needed by the other commands.
      const { serve } = await import('../../app/serve.js');
      await serve(ctx, opts.port);
    });
}
