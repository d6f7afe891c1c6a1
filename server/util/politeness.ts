import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { nativeAddon } from '../native/addon.js';

/** How much CPU and disk a backup's helper processes may take from the sites they back up. */
export interface Politeness {
  /** nice(1) increment, 0-19 (0: no change). */
  nice: number;
  /** ionice(1) class: 'idle' only gets the disk when nobody else wants it. */
  ioClass: 'idle' | 'best-effort' | 'none';
  /** 0 (highest) to 7 (lowest), for 'best-effort'. */
  ioPriority: number;
}

export const FULL_SPEED: Politeness = { nice: 0, ioClass: 'none', ioPriority: 4 };

const found = (p: string): boolean => fs.existsSync(p);

/** The command line that runs `command` with the given lower CPU and disk priority. */
export function politely(p: Politeness, command: string, args: readonly string[]): { command: string; args: string[] } {
  let argv = [command, ...args];
  if (p.nice > 0 && found('/usr/bin/nice')) argv = ['/usr/bin/nice', '-n', String(p.nice), ...argv];
  if (p.ioClass !== 'none' && found('/usr/bin/ionice')) {
    argv = ['/usr/bin/ionice', ...(p.ioClass === 'idle' ? ['-c', '3'] : ['-c', '2', '-n', String(p.ioPriority)]), ...argv];
  }
  return { command: argv[0]!, args: argv.slice(1) };
}

interface Addon { ioPriority(value?: number): number }
interface ThreadAddon { threadIoPriority(tid: number, value: number): number }

const ESRCH = 3;
const IO_CLASSES: readonly Politeness['ioClass'][] = ['idle', 'best-effort', 'none'];

/**
 * Whether an account worker can take its politeness itself, once started (takePoliteness):
 * niceness is set per thread by Node itself, the I/O priority of another thread needs the
 * native addon. Without it the worker is started under its politeness (spawnPolitely).
 */
export function workerTakesPoliteness(): boolean {
  return process.platform === 'linux' && nativeAddon<ThreadAddon>('threadIoPriority') !== null;
}

/** A politeness received from root (JSON), checked field by field; throws when malformed. */
export function parsePoliteness(value: unknown): Politeness {
  const v = value as Partial<Politeness> | null;
  if (typeof v !== 'object' || v === null || !Number.isInteger(v.nice) || v.nice! < 0 || v.nice! > 19
    || !IO_CLASSES.includes(v.ioClass!) || !Number.isInteger(v.ioPriority) || v.ioPriority! < 0 || v.ioPriority! > 7) {
    throw new Error('malformed politeness');
  }
  return { nice: v.nice!, ioClass: v.ioClass!, ioPriority: v.ioPriority! };
}

/**
 * Gives every thread of this process the niceness and I/O priority that spawnPolitely would
 * have given it at its start: the calling thread's niceness plus `nice` (at most 19), and the
 * I/O class and level. Both are per thread on Linux and a new thread inherits its creator's, so
 * the threads are listed again until no new one appears. Lowering one's own priority needs no
 * privilege. Throws when it cannot be done: a worker never reads the home faster than configured.
 */
export function takePoliteness(p: Politeness): void {
  const io = ioPriorityValue(p);
  if (p.nice <= 0 && io === null) return;
  const addon = io === null ? null : nativeAddon<ThreadAddon>('threadIoPriority');
  if (io !== null && !addon) throw new Error('cannot set the I/O priority of this process\'s threads (no native addon)');
  const nice = Math.min(19, os.getPriority(0) + p.nice);
  const done = new Set<number>();
  for (;;) {
    const tids = fs.readdirSync('/proc/self/task').map(Number).filter((t) => !done.has(t));
    if (tids.length === 0) return;
    for (const tid of tids) {
      done.add(tid);
      try {
        if (p.nice > 0 && os.getPriority(tid) < nice) os.setPriority(tid, nice);
      } catch (err) {
        // os's errors are SystemErrors: the errno's name is in `info`.
        if ((err as { info?: { code?: string } }).info?.code === 'ESRCH') continue;
        throw err;
      }
      const err = addon && io !== null ? addon.threadIoPriority(tid, io) : 0;
      if (err !== 0 && err !== ESRCH) throw new Error(`cannot set the I/O priority of thread ${tid}: errno ${err}`);
    }
  }
}

/** ioprio_set(2)'s value for the class and level ionice(1) would set (null: 'none', left as it is). */
export function ioPriorityValue(p: Politeness): number | null {
  if (p.ioClass === 'idle') return 3 << 13;
  if (p.ioClass === 'best-effort') return (2 << 13) | Math.max(0, Math.min(7, p.ioPriority));
  return null;
}

/**
 * Spawns `command` with the priority politely() gives it, without starting nice(1) and
 * ionice(1) first (two more exec's and dynamic links ahead of the command's own start-up).
 * A child inherits the niceness and I/O priority of the thread that forks it, and both are per
 * thread on Linux: root's main thread takes the child's priority for the synchronous spawn
 * only, and its own back right after (lowering niceness again needs root, so only as root).
 * Elsewhere, or without the native addon, the command line of politely().
 */
export function spawnPolitely(p: Politeness, command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  const io = ioPriorityValue(p);
  const addon = io === null ? null : nativeAddon<Addon>('ioPriority');
  if (p.nice <= 0 && io === null) return spawn(command, args, options);
  if (process.getuid?.() !== 0 || (io !== null && !addon)) {
    const run = politely(p, command, args);
    return spawn(run.command, run.args, options);
  }
  const nice = os.getPriority(0);
  const ioBefore = addon ? addon.ioPriority() : null;
  try {
    if (p.nice > 0) os.setPriority(0, Math.min(19, nice + p.nice));
    if (addon && io !== null) addon.ioPriority(io);
    return spawn(command, args, options);
  } finally {
    if (p.nice > 0) os.setPriority(0, nice);
    if (addon && ioBefore !== null) addon.ioPriority(ioBefore);
  }
}
