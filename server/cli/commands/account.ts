import { Option, type Command } from 'commander';
import { UserError } from '../../services/context.js';
import { ACCOUNT_NAME } from '../../engine/snapshot-layout.js';
import { printJson, printTable } from '../output.js';
import { action, actionAs } from '../common.js';

/** account: an account's own settings and the identities known under each name. */
export function register(program: Command): void {
  const accountCommand = program.command('account').description("an account's own settings");
  accountCommand.command('identities')
    .description('the accounts Tidemark has known under each name: a removed one keeps its snapshots (the provider\'s) apart from a later account of the same name')
    .option('--account <name>', 'one name')
    .action(action(async (ctx, json, opts: { account?: string }) => {
      if (opts.account !== undefined && !ACCOUNT_NAME.test(opts.account)) throw new UserError(`--account: "${opts.account}" is not an account name`, 'invalid-input');
      const { describeIdentity, listIdentities } = await import('../../services/account-identity.js');
      const docs = (await listIdentities(ctx, opts.account)).map((a) => describeIdentity(ctx, a));
      if (json) printJson(docs);
      else printTable(docs, ['identity', 'account', 'uid', 'panelCreatedAt', 'removedAt', 'snapshots']);
    }));
  accountCommand.command('notify')
    .description('mail about restores of the account, to its contact address in the panel (without --restores: show the setting)')
    .addOption(new Option('--restores <on|off>', 'mail me about my restores').choices(['on', 'off']))
    .option('--account <name>', 'the account (root; with --as-account it is that account)')
    .action(actionAs(async (ctx, json, who, opts: { restores?: 'on' | 'off'; account?: string }) => {
      if (who.owner !== undefined) throw new UserError('--owner does not apply to account notify', 'invalid-input');
      const { restoreMailSetting, setRestoreMail } = await import('../../services/account-preferences.js');
      const name = opts.account ?? (who.actor.role === 'user' ? who.actor.name : undefined);
      if (name === undefined) throw new UserError('give --account NAME (or act as the account with --as-account NAME)', 'invalid-input');
      if (!ACCOUNT_NAME.test(name)) throw new UserError(`--account: "${name}" is not an account name`, 'invalid-input');
      const r = opts.restores === undefined ? await restoreMailSetting(ctx, name, who.actor) : await setRestoreMail(ctx, name, opts.restores === 'on', who.actor);
      if (json) printJson(r);
      else {
        process.stdout.write(`${r.account}: mail about restores ${r.restores ? 'on' : 'off'}${r.restores && r.contactEmail ? ` (to ${r.contactEmail})` : ''}${r.chosen === null ? ` (the provider's default, "${r.mode}")` : ''}\n`);
        if (r.problem) process.stderr.write(`note: no mail goes out: ${r.problem}\n`);
      }
    }));
}
