/**
 * Makes the account worker the account (primary group, then supplementary groups of the
 * user, then uid) and checks that root cannot be regained. Called before anything touches
 * the home: first thing in a worker started for an account, and in a worker started ahead
 * (standby) as soon as root names the account. The parent starts the worker as root only so
 * that the supplementary groups can be set (spawn's uid/gid options clear them).
 */
export function becomeAccount(spec: string | undefined): void {
  if (!spec) fail('tidemark worker: no account identity\n');
  const [userName, uidText, gidText] = spec.split(':');
  const uid = Number(uidText);
  const gid = Number(gidText);
  if (!userName || !Number.isInteger(uid) || !Number.isInteger(gid) || uid <= 0 || gid < 0) {
    fail('tidemark worker: refusing to run with an invalid or root identity\n');
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
    fail(`tidemark worker: cannot switch to ${userName}: ${(err as Error).message}\n`);
  }
  let regained = false;
  try {
    process.setuid!(0);
    regained = true;
  } catch {
    // expected: an unprivileged process cannot become root again
  }
  if (regained || process.getuid!() !== uid || process.geteuid!() !== uid || process.getegid!() !== gid) {
    fail('tidemark worker: privilege drop failed\n');
  }
  process.umask(0o077);
}

function fail(message: string): never {
  process.stderr.write(message);
  process.exit(70);
}
