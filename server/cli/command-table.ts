import type { Command } from 'commander';

type Register = (program: Command) => void;

/**
 * The command groups in the order of `tidemark --help`, each with the top-level commands it
 * registers. A command's module pulls in the services it needs (the state store, the engine,
 * destination drivers): loading all of them costs every run of the CLI a large part of its
 * start-up, so a command line that names one loads only that group.
 */
export const COMMAND_GROUPS: readonly { commands: readonly string[]; load: () => Promise<{ register: Register }> }[] = [
  { commands: ['destination'], load: () => import('./commands/destination.js') },
  { commands: ['job'], load: () => import('./commands/job.js') },
  { commands: ['retention'], load: () => import('./commands/retention.js') },
  { commands: ['backup'], load: () => import('./commands/backup.js') },
  { commands: ['task'], load: () => import('./commands/task.js') },
  { commands: ['snapshot'], load: () => import('./commands/snapshot.js') },
  { commands: ['restore', 'download'], load: () => import('./commands/restore.js') },
  { commands: ['login-url'], load: () => import('./commands/login-url.js') },
  { commands: ['api-token'], load: () => import('./commands/api-token.js') },
  { commands: ['panel-event'], load: () => import('./commands/panel-event.js') },
  { commands: ['activity'], load: () => import('./commands/activity.js') },
  { commands: ['account'], load: () => import('./commands/account.js') },
  { commands: ['binlog'], load: () => import('./commands/binlog.js') },
  { commands: ['database'], load: () => import('./commands/database.js') },
  { commands: ['serve'], load: () => import('./commands/serve.js') },
  { commands: ['site'], load: () => import('./commands/site.js') },
];

/** The global options that take a value (their value is not the command's name). */
const GLOBAL_OPTIONS_WITH_VALUE = new Set(['--data-dir', '--as-account', '--owner']);

/**
 * The command a command line names: its first word that is neither an option nor the value
 * of a global option; undefined when there is none (`tidemark --help`).
 */
export function commandNamed(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return args[i + 1];
    if (!a.startsWith('-')) return a;
    if (GLOBAL_OPTIONS_WITH_VALUE.has(a)) i++;
  }
  return undefined;
}

/**
 * The value of a global option (`--data-dir X` or `--data-dir=X`), wherever it stands
 * (commander takes the program's options after the command's name too). Only a hint: the
 * worker started early is used only when what it was started with matches (prestart.ts).
 */
export function globalOptionValue(args: readonly string[], option: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return undefined;
    if (a === option) return args[i + 1];
    if (a.startsWith(`${option}=`)) return a.slice(option.length + 1);
    if (GLOBAL_OPTIONS_WITH_VALUE.has(a)) i++;
  }
  return undefined;
}

/** The group of the command a command line names, undefined when it names none. */
function groupNamed(args: readonly string[]): (typeof COMMAND_GROUPS)[number] | undefined {
  const named = commandNamed(args);
  return COMMAND_GROUPS.find((g) => named !== undefined && g.commands.includes(named));
}

/**
 * Starts loading the named command's group now, before the command line proper (commander,
 * run.ts) is loaded: the two module graphs are then read from disk together instead of one
 * after the other, and while root's main thread spawns the standby worker (entry.ts). The
 * modules are evaluated as they would be by registerCommands, which takes the same import. A
 * failure is left to registerCommands to report.
 */
export function preloadCommandGroup(args: readonly string[]): void {
  groupNamed(args)?.load().catch(() => undefined);
}

/**
 * Registers the group of the command named on the command line, or every group when it
 * names none or one that is not a command (help, a typo: commander then lists them all).
 */
export async function registerCommands(program: Command, args: readonly string[]): Promise<readonly string[]> {
  const one = groupNamed(args);
  const groups = one ? [one] : COMMAND_GROUPS;
  const modules = await Promise.all(groups.map((g) => g.load()));
  for (const m of modules) m.register(program);
  return groups.flatMap((g) => g.commands);
}
