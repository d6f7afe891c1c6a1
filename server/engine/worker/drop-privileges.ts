/**
 * Imported first by the account worker: it becomes the account (primary group, then
 * supplementary groups of the user, then uid) before any other module runs, and checks
 * that root cannot be regained. The parent starts the worker as root only so that the
 * supplementary groups can be set (spawn's uid/gid options clear them).
 */
const spec = process.env.TIDEMARK_WORKER_IDENTITY;
if (!spec) {
  process.stderr.write('tidemark worker: TIDEMARK_WORKER_IDENTITY is missing\n');
  process.exit(70);
}
const [userName, uidText, gidText] = spec.split(':');
const uid = Number(uidText);
const gid = Number(gidText);
if (!userName || !Number.isInteger(uid) || !Number.isInteger(gid) || uid <= 0 || gid < 0) {
  process.stderr.write('tidemark worker: refusing to run with an invalid or root identity\n');
  process.exit(70);
}
try {
  if (process.getuid!() === 0) {
    // initgroups is in Node but missing from @types/node.
    const withInitgroups = process as NodeJS.Process & { initgroups?: (user: string, extraGroup: number) => void };
    try {
      withInitgroups.initgroups!(userName, gid);
    } catch {
      process.setgroups!([gid]);
    }
    process.setgid!(gid);
    process.setuid!(uid);
  }
} catch (err) {
  process.stderr.write(`tidemark worker: cannot switch to ${userName}: ${(err as Error).message}\n`);
  process.exit(70);
}
let regained = false;
try {
  process.setuid!(0);
  regained = true;
} catch {
  // expected: an unprivileged process cannot become root again
}
if (regained || process.getuid!() !== uid || process.geteuid!() !== uid || process.getegid!() !== gid) {
  process.stderr.write('tidemark worker: privilege drop failed\n');
  process.exit(70);
}
process.umask(0o077);
export {};
