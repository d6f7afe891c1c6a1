import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { asAccount, createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, cliAsync, makeDataDir, makeDestinationDir, ok, type CliResult } from './support/cli.js';
import { snapshotTree } from './support/tree.js';

// Faults of issue 12: a dead account worker, a destination that fills up or turns read-only,
// a damaged previous snapshot, removals while a backup runs, killed retention and restores,
// nanosecond times. Every run must end: a failed task with its cause, or a complete snapshot.

let homeRoot: string;
let account: TestAccount;
let dataDir: string;
let destDir: string;
const cleanups: (() => void)[] = [];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

before(() => {
  homeRoot = makeHomeRoot();
  account = createAccount(homeRoot, 'tmf');
  asAccount(account, `mkdir -p docs deep/er && printf small > small.txt && head -c 4M /dev/urandom > random.bin
    for i in $(seq 1 300); do printf "file $i" > docs/f$i.txt; done && ln -s small.txt link && printf x > deep/er/x`);
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  destDir = makeDestinationDir();
  ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
});

after(() => {
  for (const c of cleanups.reverse()) { try { c(); } catch { /* best effort */ } }
  removeAccount(account);
  for (const d of [homeRoot, dataDir, destDir]) fs.rmSync(d, { recursive: true, force: true });
});

/** Account worker processes: node running account-worker.js with the account's uid. */
function workerPids(a: TestAccount): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (!cmd.includes('account-worker.js')) continue;
      const uid = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${name}/status`, 'utf8'))?.[1];
      if (Number(uid) === a.uid) out.push(Number(name));
    } catch { /* gone */ }
  }
  return out;
}

async function waitFor<T>(what: string, probe: () => T | null | undefined | false, ms = 20000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Fails the test instead of hanging forever. */
async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: still running after ${ms} ms (hangs)`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

const listed = (dest: string): any[] => ok(cli(dataDir, ['snapshot', 'list', '--destination', dest, '--account', account.username]));

function partials(dir: string): string[] {
  try { return fs.readdirSync(path.join(dir, account.username)).filter((n) => n.startsWith('.partial-')); } catch { return []; }
}

/** Every listed snapshot has its manifest and its files on the destination. */
function assertListedComplete(dest: string, dir: string): void {
  for (const s of listed(dest)) {
    const folder = path.join(dir, account.username, s.id);
    assert.ok(fs.existsSync(path.join(folder, 'manifest.json')), `listed snapshot ${s.id} has its manifest`);
    assert.ok(fs.existsSync(path.join(folder, 'index.bin.gz')), `listed snapshot ${s.id} has its index`);
  }
}

let jobs = 0;
function addJob(dest: string, structure: string, items = 'files'): string {
  const name = `j${++jobs}`;
  ok(cli(dataDir, ['job', 'add', '--name', name, '--destination', dest, '--structure', structure, '--accounts', account.username, '--items', items]));
  return name;
}

test('regression: killing the account worker crashes the CLI and the daemon', async () => {
  const job = addJob('disk', 'incremental');
  ok(cli(dataDir, ['backup', '--job', job, '--wait']));
  asAccount(account, 'head -c 48M /dev/urandom > big.bin');
  try {
    // Kills at different moments of the walk: early, and once data flows.
    for (const delay of [0, 40, 150, 400]) {
      const run = cliAsync(dataDir, ['backup', '--job', job, '--wait']);
      const [pid] = await waitFor('the account worker', () => { const p = workerPids(account); return p.length ? p : null; });
      await sleep(delay);
      try { process.kill(pid!, 'SIGKILL'); } catch { /* already done */ }
      const r: CliResult = await within(30000, 'the killed backup', run.result);
      assert.doesNotMatch(r.stderr, /\n\s+at /, `no stack trace (delay ${delay}): ${r.stderr}`);
      assert.ok(r.json, `one JSON document (delay ${delay}): ${r.stdout} ${r.stderr}`);
      if (r.json.results[0].status === 'completed') continue; // the worker had already finished
      assert.equal(r.code, 1);
      assert.equal(r.json.results[0].status, 'failed');
      assert.match(r.json.results[0].error, /account worker for \S+ failed \(SIGKILL\)/);
      assertListedComplete('disk', destDir);
    }
  } finally {
    fs.rmSync(path.join(account.home, 'big.bin'), { force: true });
  }
  const next = ok(cli(dataDir, ['backup', '--job', job, '--wait']));
  assert.equal(next.results[0].status, 'completed');
  assert.deepEqual(partials(destDir), []);
});

/** A tmpfs destination of `size`, root-only like a real destination folder. */
function tmpfsDestination(name: string, size: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-fault-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
  cleanups.push(() => { execFileSync('umount', ['-l', dir]); fs.rmSync(dir, { recursive: true, force: true }); });
  ok(cli(dataDir, ['destination', 'add', '--name', name, '--type', 'local', '--path', dir]));
  return dir;
}

/** An ext4 destination on a loop device that can be made to fail at once (`remount,abort`: read-only from then on). */
function ext4Destination(name: string): { dir: string; abort: () => void; repair: () => void } {
  const image = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-img-')) + '/disk.img';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-fault-'));
  execFileSync('truncate', ['-s', '96M', image]);
  execFileSync('mkfs.ext4', ['-q', '-F', image]);
  const mount = (): void => { execFileSync('mount', ['-o', 'loop', image, dir]); fs.chmodSync(dir, 0o700); };
  mount();
  cleanups.push(() => { try { execFileSync('umount', [dir]); } catch { /* not mounted */ } fs.rmSync(dir, { recursive: true, force: true }); fs.rmSync(path.dirname(image), { recursive: true, force: true }); });
  ok(cli(dataDir, ['destination', 'add', '--name', name, '--type', 'local', '--path', dir]));
  return {
    dir,
    abort: () => execFileSync('mount', ['-o', 'remount,abort', dir]),
    repair: () => { execFileSync('umount', [dir]); spawnSync('e2fsck', ['-p', '-f', image], { stdio: 'ignore' }); mount(); },
  };
}

const FULL_TESTS: [string, string][] = [
  // More than the compressor holds in flight: the worker must still be writing when the disk fills.
  ['compressed', 'regression: a compressed backup hangs forever when the destination fills up'],
  ['archive', 'regression: a full destination fails an archive backup without naming the snapshot'],
  ['incremental', 'a full destination fails an incremental backup clearly and removes its folder'],
];
for (const [structure, name] of FULL_TESTS) {
  test(name, async () => {
    const dir = tmpfsDestination(`full-${structure}`, '2m');
    const job = addJob(`full-${structure}`, structure);
    asAccount(account, 'head -c 24M /dev/urandom > big.bin');
    const r = await within(60000, 'a backup to a full destination', cliAsync(dataDir, ['backup', '--job', job, '--wait']).result)
      .finally(() => fs.rmSync(path.join(account.home, 'big.bin'), { force: true }));
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.json.results[0].status, 'failed');
    assert.match(r.json.results[0].error, /no space left on the destination while writing snapshot \S+ of /);
    assert.deepEqual(listed(`full-${structure}`), []);
    assert.deepEqual(fs.readdirSync(path.join(dir, account.username)), [], 'the .partial- folder was removed');
    assert.deepEqual(workerPids(account), [], 'no account worker left behind');
  });
}

test('regression: a compressed backup hangs forever when the destination turns read-only', async () => {
  const disk = ext4Destination('ro');
  const job = addJob('ro', 'compressed');
  asAccount(account, 'head -c 40M /dev/urandom > big.bin');
  try {
    const run = cliAsync(dataDir, ['backup', '--job', job, '--wait']);
    await waitFor('the tar on the destination', () => {
      const p = partials(disk.dir)[0];
      return p && fs.existsSync(path.join(disk.dir, account.username, p, 'files.tar.gz')) && fs.statSync(path.join(disk.dir, account.username, p, 'files.tar.gz')).size > 0;
    });
    disk.abort();
    const r = await within(60000, 'a backup to a destination turned read-only', run.result);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.json.results[0].status, 'failed');
    assert.match(r.json.results[0].error, /not writable \(EROFS\)|I\/O error/);
    assert.match(r.json.results[0].error, /snapshot \S+ of /);
    assert.deepEqual(listed('ro'), []);
    assert.deepEqual(workerPids(account), []);
    // Once the disk is back, the next run removes the leftover and completes.
    disk.repair();
    const next = ok(cli(dataDir, ['backup', '--job', job, '--wait']));
    assert.equal(next.results[0].status, 'completed');
    assert.deepEqual(partials(disk.dir), []);
  } finally {
    fs.rmSync(path.join(account.home, 'big.bin'), { force: true });
  }
});
