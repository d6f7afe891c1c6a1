import fs from 'node:fs';
import { Option, type Command } from 'commander';
import { UserError } from '../../services/context.js';
import {
  eventFromArguments, eventFromCpanelHook, eventFromDirectAdminEnv, handlePanelEvent, isPanelEventKind, PANEL_EVENTS, type PanelEvent,
} from '../../services/panel-events.js';
import { printJson } from '../output.js';
import { seconds } from '../option-values.js';
import { action } from '../common.js';

/** panel-event: an account event from the panel hook scripts. */
export function register(program: Command): void {
  program.command('panel-event')
    .description('an account event from the panel: the panel hook scripts call this')
    .argument('[event]', `${PANEL_EVENTS.join(' | ')} (with --panel cpanel: read from the hook input when left out)`)
    .addOption(new Option('--panel <panel>', 'read the account the way the panel passes it: cpanel (hook JSON on stdin), directadmin (environment)').choices(['cpanel', 'directadmin']))
    .option('--user <name>', 'the account (without --panel)')
    .option('--new-user <name>', 'renamed: the new name (without --panel)')
    .option('--time-limit <seconds>', 'removed: the longest the final backup may take (default 900)', seconds(0, 604800))
    .action(action(async (ctx, json, kind: string | undefined, opts: { panel?: string; user?: string; newUser?: string; timeLimit?: number }) => {
      if (kind !== undefined && !isPanelEventKind(kind)) throw new UserError(`unknown event "${kind}": use one of ${PANEL_EVENTS.join(', ')}`, 'invalid-input');
      if (opts.timeLimit !== undefined && !(opts.timeLimit >= 0)) throw new UserError('--time-limit is a number of seconds', 'invalid-input');
      let ev: PanelEvent | null;
      if (opts.panel === 'cpanel') ev = eventFromCpanelHook(fs.readFileSync(0, 'utf8'), kind);
      else if (kind === undefined) throw new UserError('give the event (or --panel cpanel with the hook input on stdin)', 'invalid-input');
      else if (opts.panel === 'directadmin') ev = eventFromDirectAdminEnv(kind, process.env);
      else ev = eventFromArguments(kind, opts.user, opts.newUser);
      if (ev === null) {
        const doc = { event: null, ok: true, summary: 'the account kept its name: nothing to do', errors: [] };
        if (json) printJson(doc); else process.stdout.write(`${doc.summary}\n`);
        return;
      }
      const outcome = await handlePanelEvent(ctx, ev, opts.timeLimit !== undefined ? { timeLimitMs: opts.timeLimit * 1000 } : {});
      const text = json ? JSON.stringify(outcome, null, 2) + '\n' : [outcome.summary, ...outcome.errors.map((e) => `error: ${e}`)].join('\n') + '\n';
      // A removal never fails for the panel: what went wrong is in the outcome and the activity log.
      const code = outcome.ok || outcome.event === 'removed' ? 0 : 1;
      if (outcome.finalBackup?.timedOut) {
        // The unfinished backup is still running in this process: leave it behind (its partial folder is never listed).
        fs.writeSync(1, text);
        process.exit(code);
      }
      process.stdout.write(text);
      process.exitCode = code;
    }));
}
