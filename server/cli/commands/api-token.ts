import { Option, type Command } from 'commander';
import { printJson, printTable } from '../output.js';
import { wholeNumber } from '../option-values.js';
import { action, ROLES } from '../common.js';

/** api-token: tokens of the JSON API. */
export function register(program: Command): void {
  const apiToken = program.command('api-token').description('tokens of the JSON API (root only)');
  apiToken.command('create')
    .description('create a token: it is printed this once, only its hash is kept')
    .requiredOption('--name <name>', 'a name to list and revoke it by')
    .addOption(new Option('--role <role>', 'admin | reseller | user').choices(ROLES).default('admin'))
    .option('--user <name>', 'reseller or user tokens: whom the token acts as')
    .option('--expires <days>', 'valid this many days (default: until revoked)', wholeNumber(1, 3650))
    .action(action(async (ctx, json, opts: { name: string; role: string; user?: string; expires?: number }) => {
      const { createApiToken } = await import('../../app/api/tokens.js');
      const doc = await createApiToken(ctx, { name: opts.name, role: opts.role, ...(opts.user !== undefined ? { user: opts.user } : {}), ...(opts.expires !== undefined ? { expiresDays: opts.expires } : {}) });
      if (json) printJson(doc); else process.stdout.write(`${String(doc.token)}\n(shown once: only its hash is stored)\n`);
    }));
  apiToken.command('list').action(action(async (ctx, json) => {
    const { listApiTokens } = await import('../../app/api/tokens.js');
    const docs = listApiTokens(ctx);
    if (json) printJson(docs); else printTable(docs, ['name', 'role', 'user', 'createdAt', 'expiresAt', 'lastUsedAt', 'valid']);
  }));
  apiToken.command('revoke').argument('<name>').action(action(async (ctx, json, name: string) => {
    const { revokeApiToken } = await import('../../app/api/tokens.js');
    const doc = revokeApiToken(ctx, name);
    if (json) printJson(doc); else process.stdout.write(`API token "${name}" revoked\n`);
  }));
}
