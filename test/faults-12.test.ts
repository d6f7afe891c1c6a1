import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import net from 'node:net';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { asAccount, createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { CLI, cli, cliAsync, makeDataDir, makeDestinationDir, ok, type CliResult } from './support/cli.js';
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

/** The processes running with `uid` (real or effective), or null when there are none. */
function pidsOf(uid: number): number[] | null {
  const pids: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      const ids = /^Uid:\s+(\d+)\s+(\d+)/m.exec(fs.readFileSync(`/proc/${name}/status`, 'utf8'));
      if (ids && (Number(ids[1]) === uid || Number(ids[2]) === uid)) pids.push(Number(name));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids.length > 0 ? pids : null;
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
    asAccount(account, 'head -c 16M /dev/urandom > big.bin');
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

test('regression: a 0-byte previous index crashed every later backup of the job', async () => {
  const job = addJob('disk', 'incremental');
  const first = ok(cli(dataDir, ['backup', '--job', job, '--wait'])).results[0].snapshot;
  // What a power cut left: a complete manifest over an empty index.
  fs.truncateSync(path.join(destDir, account.username, first, 'index.bin.gz'), 0);
  const r = ok(cli(dataDir, ['backup', '--job', job, '--wait']));
  assert.equal(r.results[0].status, 'completed');
  const log = ok(cli(dataDir, ['task', 'show', String(r.results[0].task)])).log.map((l: any) => l.message).join('\n');
  assert.match(log, new RegExp(`previous snapshot ${first} not used as a base .*index\\.bin\\.gz`));
  // A previous snapshot whose folder is gone altogether.
  const second = r.results[0].snapshot;
  fs.rmSync(path.join(destDir, account.username, second), { recursive: true });
  const third = ok(cli(dataDir, ['backup', '--job', job, '--wait']));
  assert.equal(third.results[0].status, 'completed');
  // Everything was stored again: the new snapshot stands on its own.
  const files = ok(cli(dataDir, ['snapshot', 'files', third.results[0].snapshot, 'docs', '--destination', 'disk']));
  assert.ok(JSON.stringify(files).includes('f300.txt'));
  // The catalog forgets the snapshot whose folder went away.
  ok(cli(dataDir, ['destination', 'reindex', 'disk']));
});

test('regression: job remove while its backup runs orphaned the snapshot', async () => {
  const job = addJob('disk', 'archive');
  asAccount(account, 'head -c 64M /dev/urandom > big.bin');
  try {
    const run = cliAsync(dataDir, ['backup', '--job', job, '--wait']);
    // The account worker is held stopped while the removal is tried: the backup is certainly
    // running then (a 64 MiB archive may otherwise end before the second CLI has started).
    const workers = await waitFor('the backup to run', () => partials(destDir).length > 0 && pidsOf(account.uid));
    for (const pid of workers) process.kill(pid, 'SIGSTOP');
    let refused: CliResult;
    try {
      refused = cli(dataDir, ['job', 'remove', job]);
    } finally {
      for (const pid of workers) process.kill(pid, 'SIGCONT');
    }
    assert.notEqual(refused.code, 0);
    assert.match(refused.json.error, new RegExp(`job "${job}" is in use by task \\d+ \\(backup of ${account.username}, running\\): wait until it ends or cancel it`));
    const r = await within(60000, 'the backup', run.result);
    assert.equal(r.json.results[0].status, 'completed');
    assert.ok(listed('disk').some((s) => s.id === r.json.results[0].snapshot), 'the snapshot is listed');
    ok(cli(dataDir, ['job', 'remove', job]));
  } finally {
    fs.rmSync(path.join(account.home, 'big.bin'), { force: true });
  }
});

test('destination remove --delete-data while a backup to it runs is refused', async () => {
  const other = makeDestinationDir();
  cleanups.push(() => fs.rmSync(other, { recursive: true, force: true }));
  ok(cli(dataDir, ['destination', 'add', '--name', 'busy', '--type', 'local', '--path', other]));
  const job = addJob('busy', 'archive');
  asAccount(account, 'head -c 256M /dev/urandom > big.bin');
  try {
    const r = ok(cli(dataDir, ['backup', '--job', job, '--wait']));
    ok(cli(dataDir, ['job', 'remove', job]));
    // Changed since the backup, so the restore writes it anew (an identical file would be kept).
    asAccount(account, 'printf changed >> big.bin');
    // A restore from it holds it too.
    const restore = cliAsync(dataDir, ['restore', r.results[0].snapshot, '--destination', 'busy', '--path', 'big.bin', '--wait']);
    await waitFor('the restore to run', () => fs.readdirSync(account.home).some((n) => n.startsWith('.tidemark-')));
    const refused = cli(dataDir, ['destination', 'remove', 'busy', '--delete-data']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.json.error, /destination "busy" is in use by task \d+ \(restore of /);
    ok(await within(60000, 'the restore', restore.result));
    assert.ok(fs.existsSync(path.join(other, account.username, r.results[0].snapshot, 'manifest.json')), 'the data is still there');
    const removed = ok(cli(dataDir, ['destination', 'remove', 'busy', '--delete-data']));
    assert.equal(removed.deletedSnapshots, 1);
  } finally {
    fs.rmSync(path.join(account.home, 'big.bin'), { force: true });
  }
});

test('regression: a killed retention left a half-deleted snapshot listed', async () => {
  const job = addJob('disk', 'incremental');
  asAccount(account, 'mkdir -p many && cd many && for i in $(seq 1 3000); do echo $i > f$i; done');
  try {
    let killedDuring = 0;
    for (let round = 0; round < 3; round++) {
      ok(cli(dataDir, ['job', 'schedule', 'manual', job, '--keep', 'all']));
      ok(cli(dataDir, ['backup', '--job', job, '--wait']));
      ok(cli(dataDir, ['backup', '--job', job, '--wait']));
      ok(cli(dataDir, ['job', 'schedule', 'manual', job, '--keep', '1']));
      const before = listed('disk').map((s) => s.id);
      const run = cliAsync(dataDir, ['retention']);
      // Killed as the removal goes on, at a slightly different moment each round.
      const seen = await waitFor('the removal', () => partials(destDir).length > 0 || run.child.exitCode !== null, 20000).catch(() => false);
      await sleep(round * 3);
      if (seen && run.child.exitCode === null) { run.child.kill('SIGKILL'); killedDuring++; }
      await within(20000, 'retention', run.result);
      assertListedComplete('disk', destDir);
      // Whatever it had removed is gone from the list; nothing listed is lost.
      for (const s of listed('disk')) assert.ok(before.includes(s.id));
      ok(cli(dataDir, ['retention']));
      assertListedComplete('disk', destDir);
    }
    assert.ok(killedDuring > 0, 'at least one retention was killed in the middle');
    // The next backup clears what the killed runs left.
    ok(cli(dataDir, ['backup', '--job', job, '--wait']));
    assert.deepEqual(partials(destDir), []);
  } finally {
    fs.rmSync(path.join(account.home, 'many'), { recursive: true, force: true });
  }
});

test('regression: killed in-place restores leave .tidemark- temporary files', async () => {
  const job = addJob('disk', 'incremental');
  asAccount(account, 'head -c 64M /dev/urandom > big.bin');
  // Not the writer's: another owner's file under the name, and a name that only looks alike.
  fs.writeFileSync(path.join(account.home, '.tidemark-0123456789ab'), 'root owned');
  asAccount(account, 'printf mine > .tidemark-notes && printf mine > docs/.tidemark-abcdef12345');
  try {
    const snap = ok(cli(dataDir, ['backup', '--job', job, '--wait'])).results[0].snapshot;
    // Changed since the backup: the restore replaces it through a temporary name (an identical file would be kept).
    asAccount(account, 'printf changed >> big.bin');
    const tempNames = (): string[] => fs.readdirSync(account.home).filter((n) => /^\.tidemark-[0-9a-f]{12}$/.test(n) && n !== '.tidemark-0123456789ab');
    const run = cliAsync(dataDir, ['restore', snap, '--destination', 'disk', '--path', 'big.bin', '--wait']);
    await waitFor('the temporary file', () => tempNames().length > 0 && fs.statSync(path.join(account.home, tempNames()[0]!)).size > 0);
    for (const pid of workerPids(account)) process.kill(pid, 'SIGKILL');
    const killed = await within(30000, 'the killed restore', run.result);
    assert.equal(killed.code, 1);
    assert.match(killed.json?.error ?? killed.json?.results?.[0]?.error ?? '', /account worker for \S+ failed \(SIGKILL\)/);
    assert.doesNotMatch(killed.stderr, /\n\s+at /);
    assert.equal(tempNames().length, 1, 'the killed restore left its temporary file');
    // The next restore of the account, of another file, removes it.
    ok(cli(dataDir, ['restore', snap, '--destination', 'disk', '--path', 'small.txt', '--wait']));
    assert.deepEqual(tempNames(), []);
    assert.ok(fs.existsSync(path.join(account.home, '.tidemark-0123456789ab')), "another owner's file stays");
    assert.ok(fs.existsSync(path.join(account.home, '.tidemark-notes')), 'a name that only looks alike stays');
    assert.ok(fs.existsSync(path.join(account.home, 'docs/.tidemark-abcdef12345')));
  } finally {
    for (const n of ['big.bin', '.tidemark-0123456789ab', '.tidemark-notes', 'docs/.tidemark-abcdef12345']) fs.rmSync(path.join(account.home, n), { force: true });
  }
});

test('a failed restore into a new folder names the folder it leaves', async () => {
  const job = addJob('disk', 'incremental');
  asAccount(account, 'head -c 64M /dev/urandom > big.bin');
  try {
    const snap = ok(cli(dataDir, ['backup', '--job', job, '--wait'])).results[0].snapshot;
    const run = cliAsync(dataDir, ['restore', snap, '--destination', 'disk', '--into-folder', '--wait']);
    await waitFor('the restore folder', () => fs.readdirSync(account.home).some((n) => n.startsWith('tidemark-restore-')) && workerPids(account).length > 0);
    await sleep(30);
    for (const pid of workerPids(account)) process.kill(pid, 'SIGKILL');
    const r = await within(30000, 'the killed restore', run.result);
    const folder = fs.readdirSync(account.home).find((n) => n.startsWith('tidemark-restore-'))!;
    assert.equal(r.code, 1);
    assert.ok(JSON.stringify(r.json).includes(`the files restored so far are in the folder ${folder} of the home`), r.stdout);
    fs.rmSync(path.join(account.home, folder), { recursive: true, force: true });
  } finally {
    fs.rmSync(path.join(account.home, 'big.bin'), { force: true });
  }
});

test('regression: restored mtimes are cut to the microsecond', async () => {
  const job = addJob('disk', 'incremental');
  asAccount(account, `mkdir -p times/sub && printf a > times/a && printf b > times/sub/b && ln -sfn a times/link
    touch -d '2021-03-04 05:06:07.123456789' times/a && touch -d '2020-01-01 00:00:00.000000999' times/sub/b
    touch -h -d '2019-05-05 05:05:05.987654321' times/link && touch -d '2018-02-03 04:05:06.555555555' times/sub times`);
  try {
    const tree = (): Map<string, bigint> => new Map([...snapshotTree(path.join(account.home, 'times'))].map(([k, v]) => [k, v.mtimeNs]));
    const original = tree();
    ok(cli(dataDir, ['backup', '--job', job, '--wait']));
    const snap = ok(cli(dataDir, ['backup', '--job', job, '--wait'])).results[0].snapshot;
    asAccount(account, 'rm -rf times');
    ok(cli(dataDir, ['restore', snap, '--destination', 'disk', '--wait']));
    assert.deepEqual(tree(), original, 'every time is restored to the nanosecond');
    const next = ok(cli(dataDir, ['backup', '--job', job, '--wait']));
    assert.equal(next.results[0].storedBytes, 0, 'the next incremental run stores nothing again');
  } finally {
    fs.rmSync(path.join(account.home, 'times'), { recursive: true, force: true });
  }
});

test('regression: a database listing failure fails the whole account', async () => {
  const bodies: any[] = [];
  const server = http.createServer((req, res) => { let b = ''; req.on('data', (c) => { b += c; }); req.on('end', () => { bodies.push(JSON.parse(b)); res.end('ok'); }); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => server.close());
  const state = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot], mysql: { user: 'root', socket: '/nonexistent/tidemark-test-mysqld.sock' },
    notifications: { webhook: { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/hook` }, on: 'failure' } });
  const dest = makeDestinationDir();
  cleanups.push(() => { fs.rmSync(state, { recursive: true, force: true }); fs.rmSync(dest, { recursive: true, force: true }); });
  ok(cli(state, ['destination', 'add', '--name', 'd', '--type', 'local', '--path', dest]));
  ok(cli(state, ['job', 'add', '--name', 'all', '--destination', 'd', '--structure', 'incremental', '--accounts', account.username, '--items', 'files,databases,database-users']));
  const r = await within(60000, 'the backup', cliAsync(state, ['backup', '--job', 'all', '--wait']).result);
  assert.ok(r.json?.results, r.stdout + r.stderr);
  const result = r.json.results[0];
  assert.equal(result.status, 'partial', r.stdout + r.stderr);
  assert.ok(result.snapshot, 'the files were backed up');
  const manifest = JSON.parse(fs.readFileSync(path.join(dest, account.username, result.snapshot, 'manifest.json'), 'utf8'));
  assert.equal(manifest.status, 'partial');
  assert.deepEqual(manifest.problems.map((p: any) => p.item), ['databases', 'database-users']);
  assert.match(manifest.problems[0].reason, new RegExp(`cannot list the databases of account '${account.username}'`));
  assert.ok(fs.existsSync(path.join(dest, account.username, result.snapshot, 'index.bin.gz')));
  const log = ok(cli(state, ['task', 'show', String(result.task)])).log.map((l: any) => l.message).join('\n');
  assert.match(log, /not backed up: databases/);
  assert.match(log, /cannot list the databases of account/);
  assert.equal(bodies.length, 1, 'the failed part is notified like a failure');
  assert.equal(bodies[0].tidemark.status, 'partial');
  assert.match(bodies[0].text, /Not backed up: databases/);
  assert.equal(bodies[0].tidemark.problems[0].item, 'databases');
});

test('regression: killing the account worker under the daemon crashes the daemon', async () => {
  const state = makeDataDir({});
  const dest = makeDestinationDir();
  const port = 19000 + (process.pid % 900);
  fs.writeFileSync(path.join(state, 'config.json'), JSON.stringify({ panel: 'standalone', homeRoots: [homeRoot], socketPath: path.join(state, 'run', 'tidemark.sock'), httpPort: port, logLevel: 'silent' }));
  ok(cli(state, ['destination', 'add', '--name', 'd', '--type', 'local', '--path', dest]));
  ok(cli(state, ['job', 'add', '--name', 'inc', '--destination', 'd', '--structure', 'incremental', '--accounts', account.username, '--items', 'files']));
  ok(cli(state, ['job', 'add', '--name', 'gz', '--destination', 'd', '--structure', 'compressed', '--accounts', account.username, '--items', 'files']));
  const first = ok(cli(state, ['backup', '--job', 'inc', '--wait'])).results[0].snapshot;
  const daemon = spawn(process.execPath, [CLI, '--data-dir', state, 'serve'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  daemon.stderr!.on('data', (d) => { stderr += d; });
  cleanups.push(() => { daemon.kill('SIGKILL'); fs.rmSync(state, { recursive: true, force: true }); fs.rmSync(dest, { recursive: true, force: true }); });
  await waitFor('the daemon', () => fs.existsSync(path.join(state, 'run', 'tidemark.sock')));
  asAccount(account, 'head -c 48M /dev/urandom > big.bin');
  try {
    const rounds: [string[], number][] = [
      [['backup', '--job', 'inc', '--wait'], 20], [['backup', '--job', 'gz', '--wait'], 100],
      [['restore', first, '--destination', 'd', '--path', 'docs', '--wait'], 0], [['backup', '--job', 'gz', '--wait'], 300],
    ];
    for (const [args, delay] of rounds) {
      const run = cliAsync(state, args);
      const pids = await waitFor('the account worker', () => { const p = workerPids(account); return p.length ? p : null; }).catch(() => []);
      await sleep(delay);
      for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* done already */ } }
      const r = await within(30000, `${args[0]} under the daemon`, run.result);
      assert.equal(daemon.exitCode, null, `the daemon survives (${args.join(' ')}): ${stderr}`);
      assert.ok(r.json, `a JSON answer: ${r.stdout} ${r.stderr}`);
      const status = r.json.results?.[0]?.status ?? r.json.status;
      if (status !== 'completed') assert.match(JSON.stringify(r.json), /account worker for \S+ failed \(SIGKILL\)/);
      for (const s of ok(cli(state, ['snapshot', 'list', '--account', account.username]))) {
        assert.ok(fs.existsSync(path.join(dest, account.username, s.id, 'manifest.json')), `listed ${s.id} is complete`);
      }
    }
    const next = ok(cli(state, ['backup', '--job', 'inc', '--wait']));
    assert.equal(next.results[0].status, 'completed');
    assert.equal(daemon.exitCode, null, stderr);
  } finally {
    fs.rmSync(path.join(account.home, 'big.bin'), { force: true });
  }
});

test('regression: a damaged archive is restored with "unexpected end of file", naming nothing', async () => {
  const job = addJob('disk', 'compressed');
  const snap = ok(cli(dataDir, ['backup', '--job', job, '--wait'])).results[0].snapshot;
  const file = path.join(destDir, account.username, snap, 'files.tar.gz');
  fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2));
  const target = fs.mkdtempSync(path.join(account.home, 'x'));
  fs.rmSync(target, { recursive: true });
  const r = await within(30000, 'the restore', cliAsync(dataDir, ['restore', snap, '--destination', 'disk', '--into-folder', '--wait']).result);
  assert.equal(r.code, 1);
  const error = JSON.stringify(r.json);
  assert.match(error, new RegExp(`snapshot ${account.username}/${snap}: files\\.tar\\.gz: unexpected end of file while reading \\\\"[^"\\\\]+\\\\": the destination copy is damaged`), error);
  assert.match(error, /the files restored so far are in the folder tidemark-restore-/);
  for (const n of fs.readdirSync(account.home).filter((x) => x.startsWith('tidemark-restore-'))) fs.rmSync(path.join(account.home, n), { recursive: true, force: true });
});
