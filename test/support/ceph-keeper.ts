/**
 * The keeper of a test run's shared Ceph cluster (see sharedCeph in ceph.ts), started detached
 * by the first test file that needs it: `node ceph-keeper.js DIR OWNER_PID OWNER_START`.
 * It starts the daemons as its own children, waits until the owner (the `node --test` runner)
 * has exited, however it exited, then kills them, reaps them and removes DIR.
 */
import fs from 'node:fs';
import { keepShared, procStart, type CephCluster } from './ceph.js';

const [dirArg, ownerArg, ownerStart] = process.argv.slice(2);
if (!dirArg || !ownerArg || !ownerStart) {
  process.stderr.write('usage: ceph-keeper DIR OWNER_PID OWNER_START\n');
  process.exit(2);
}
const dir: string = dirArg;
const owner = Number(ownerArg);
const ownerAlive = (): boolean => procStart(owner) === ownerStart;

let cluster: CephCluster | null = null;
let ending = false;
async function end(code: number): Promise<void> {
  if (ending) return;
  ending = true;
  try { await cluster?.stop(); } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    process.exit(code);
  }
}
process.on('SIGTERM', () => void end(0));
process.on('SIGINT', () => void end(0));

const watch = setInterval(() => { if (!ownerAlive()) void end(0); }, 500);
try {
  cluster = await keepShared(dir);
  if (ending) await cluster.stop();
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  // failed.txt stays until the run ends, so that every later test file reports the same cause.
}
void watch;
