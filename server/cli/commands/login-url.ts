import { Option, type Command } from 'commander';
import { printJson } from '../output.js';
import { action, ROLES } from '../common.js';

/** login-url: a one-time URL that opens a web session. */
export function register(program: Command): void {
  program.command('login-url')
    .description('print a one-time URL (valid 2 minutes) that opens a web session (root only)')
    .requiredOption('--user <name>', 'who signs in')
    .addOption(new Option('--role <role>', 'admin | reseller | user').choices(ROLES).makeOptionMandatory())
    .action(action(async (ctx, json, opts: { user: string; role: string }) => {
      const { createLoginUrl } = await import('../../app/login-url.js');
      const r = await createLoginUrl(ctx, opts.user, opts.role);
      if (json) printJson(r); else process.stdout.write(`${r.url}\n`);
    }));
}
