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
 * process.exitCode set), but without what process.exit still does after them: V8's platform
 * disposed of (its threads joined), the C library's exit handlers and destructors (libuv's pool
 * joined). _exit(2) instead (native/exit-now.c): 3-8 ms of CPU less per process. The caller has
 * nothing left to write: Node's writes to pipes, files and terminals are synchronous on Linux.
 * Without the addon, or where tear-down writes something (canEndAtOnce), process.exit.
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
