import { nativeAddon } from './addon.js';

interface Addon { exitNow(code: number): never }

/**
 * Options under which Node writes something at its tear-down (a CPU or heap profile, V8's
 * log, coverage, trace events): a process run with one ends through process.exit, which
 * writes it.
 */
const WRITTEN_AT_TEAR_DOWN = /(^|\s)--(cpu-prof|heap-prof|prof|trace-event|trace-events-enabled|report-on-signal|diagnostic-dir)/;

/** Whether this process can end without Node's tear-down (nothing is written there). */
export function canEndAtOnce(): boolean {
  if (process.env.NODE_V8_COVERAGE) return false;
  return !WRITTEN_AT_TEAR_DOWN.test(`${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`);
}

/**
 * Ends the process with `code` as process.exit does ('exit' listeners run, with
 * process.exitCode set), but without Node's tear-down: _exit(2) (native/exit-now.c). That
 * tear-down joins every helper thread (V8's platform workers, libuv's pool), each of which
 * must get a processor to end: the account worker's run at nice 10 and SCHED_BATCH, and on a
 * busy machine root waited for them at the end of every backup (5-40 ms between the worker's
 * last write and its end). The caller has nothing left to write: Node's writes to pipes,
 * files and terminals are synchronous on Linux. Without the addon, or where tear-down writes
 * something (canEndAtOnce), process.exit.
 */
export function endProcess(code: number): never {
  const addon = canEndAtOnce() ? nativeAddon<Addon>('exitNow') : null;
  if (!addon) process.exit(code);
  process.exitCode = code;
  (process as { _exiting?: boolean })._exiting = true;
  process.emit('exit', code);
  // A listener may have changed the code, as it may before process.exit ends.
  const final = typeof process.exitCode === 'number' ? process.exitCode : code;
  return addon.exitNow(final);
}
