import fs from 'node:fs';

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
