/**
 * How fast this machine is at the two things the rows' spread follows most: the first touch
 * of fresh memory and a Node start. On the virtual machines this project is measured on, a
 * page's first touch (a page fault) cost from under 1 µs to about 15 µs depending on the
 * day, and with it `node -e 0` (about 2,200 faults) and every row whose processes or page
 * cache take in new memory. Taken at the start and the end of a run so its figures can be
 * read against the machine it had.
 */
import { execFileSync } from 'node:child_process';

export interface MachineProbe {
  /** Microseconds per 4 KiB page touched for the first time, beyond what touching it again costs. */
  firstTouchMicrosPerPage: number;
  /** Seconds of `node -e 0`, the best of three. */
  nodeStartSeconds: number;
}

const PROBE_MIB = 128;

// A child process of its own: its 128 MiB Buffer is a fresh mapping (the bench's own heap may reuse freed memory).
const TOUCH_SCRIPT = `
const n = ${PROBE_MIB} << 20;
const b = Buffer.allocUnsafeSlow(n);
let t = process.hrtime.bigint();
for (let i = 0; i < n; i += 4096) b[i] = 1;
const first = Number(process.hrtime.bigint() - t);
t = process.hrtime.bigint();
for (let i = 0; i < n; i += 4096) b[i] = 2;
const again = Number(process.hrtime.bigint() - t);
process.stdout.write(String((first - again) / 1000 / (n / 4096)));
`;

export function probeMachine(): MachineProbe {
  const firstTouchMicrosPerPage = Number(execFileSync(process.execPath, ['-e', TOUCH_SCRIPT], { encoding: 'utf8' }));
  let nodeStartSeconds = Infinity;
  for (let i = 0; i < 3; i++) {
    const t = process.hrtime.bigint();
    execFileSync(process.execPath, ['-e', '0']);
    nodeStartSeconds = Math.min(nodeStartSeconds, Number(process.hrtime.bigint() - t) / 1e9);
  }
  return { firstTouchMicrosPerPage, nodeStartSeconds };
}

export const describeProbe = (p: MachineProbe): string =>
  `a fresh memory page's first touch ${p.firstTouchMicrosPerPage.toFixed(2)} µs, node -e 0 ${p.nodeStartSeconds.toFixed(3)} s`;
