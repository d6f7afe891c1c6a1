/** The command line proper: commander, the command named, errors to exit codes (main.ts loads this). */
import { Command, CommanderError } from 'commander';
import { errorCodeOf, TidemarkError, type ErrorCode } from '../services/errors.js';
import { clipEchoedInput, printJson } from './output.js';
import { registerCommands } from './command-table.js';
import { batchHelperThreads } from '../native/sched-batch.js';
import { endProcess } from '../native/exit-now.js';

const program = new Command();
program
  .name('tidemark')
  .description('Backups of hosting accounts: incremental snapshots, tar and tar.gz archives.')
  .option('--data-dir <dir>', 'state directory (default: $TIDEMARK_HOME or /var/lib/tidemark)')
  .option('--json', 'print one JSON document')
  .option('--as-account <name>', "act as this account's holder, with exactly its rights (as a panel bridge does)")
  .option('--owner <account>', "the provider reaching an account's destination or job of a given name")
  .showHelpAfterError()
  // Commander repeats a refused value: never a long one whole, never a control character raw.
  .configureOutput({ outputError: (text, write) => write(clipEchoedInput(text)) })
  .exitOverride();

await registerCommands(program, process.argv.slice(2));
// Only now, with the command's modules loaded: Node's ES module loader reads each module
// through libuv's pool (open, fstat, read, close, one after the other), and a SCHED_BATCH pool
// thread, which waits for the running thread's turn to end, made each of those round trips
// wait for the processor on a busy machine (sched-batch.ts).
batchHelperThreads();

/**
 * The exit code of each error code (services/errors.ts), the only place they are chosen:
 * 2 for a malformed command line (commander's own parse errors end in 2 below as well),
 * 1 for every refusal of a well-formed one and every failure.
 */
const EXIT_CODES: Record<ErrorCode, number> = {
  'invalid-input': 2,
  refused: 1, 'not-found': 1, forbidden: 1, conflict: 1, busy: 1,
  'destination-unreachable': 1, 'destination-not-writable': 1, 'destination-no-space': 1, 'destination-not-found': 1,
  'destination-invalid': 1, 'destination-insecure': 1, 'destination-io': 1,
  internal: 1,
};

async function main(): Promise<void> {
  // A reader that went away (`tidemark … | head`) ends the output, not the work: a backup or
  // restore it was printing about runs to its end instead of dying with a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => { if (err.code !== 'EPIPE') throw err; });
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    const json = process.argv.includes('--json');
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return;
      // Every malformed command line (unknown option, missing or refused value) ends here.
      process.exitCode = 2;
      if (json) printJson({ error: clipEchoedInput(err.message) });
      return;
    }
    const message = clipEchoedInput((err as Error).message ?? String(err));
    if (json) printJson({ error: message }); else process.stderr.write(`tidemark: ${message}\n`);
    if (!(err instanceof TidemarkError) && process.env.TIDEMARK_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    process.exitCode = EXIT_CODES[errorCodeOf(err)];
  }
}

await main();
// Once the command is done and the event loop has nothing left to run (every write, child and
// timer the command started has ended), the process ends at once: process.exit still emits
// 'exit' with the exit code set above, but skips Node's tear-down of its heap and environment,
// which took 0.1-0.2 s after a backup of 20,000 files on a busy machine (the samples: V8's
// Heap::TearDown unmapping and re-protecting its pages) and ended every command. Registered
// last, so any other 'beforeExit' listener has run first. Nor are V8's platform and libuv's pool
// taken down (exit-now.ts): a few ms of CPU less, as in the account worker.
process.once('beforeExit', () => endProcess(typeof process.exitCode === 'number' ? process.exitCode : 0));
