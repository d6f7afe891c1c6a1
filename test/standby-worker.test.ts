/**
 * `tidemark backup` starts its account worker before it knows the account (a standby, see
 * spawn-worker.ts prestartAccountWorker): the worker must still read the home only as the
 * account, carry the previous index and the tar as a worker started for the account does,
 * refuse root, and end when nobody takes it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';
import { globalOptionValue } from '../server/cli/command-table.js';
import { prestartAccountWorker, spawnAccountWorker } from '../server/engine/worker/spawn-worker.js';
import { parseEntryStream } from '../server/engine/format/entry.js';

const WORKER = fileURLToPath(new URL('../server/engine/worker/account-worker.js', import.meta.url));
const SPAWN_WORKER = fileURLToPath(new URL('../server/engine/worker/spawn-worker.js', import.meta.url));

let homeRoot: string;
let account: TestAccount;
let dataDir: string;
let destDir: string;

before(() => {
  homeRoot = makeHomeRoot();
  account = createAccount(homeRoot);
  const h = account.home;
  for (const skel of fs.readdirSync(h)) fs.rmSync(path.join(h, skel), { recursive: true });
  fs.mkdirSync(path.join(h, 'site'));
  fs.writeFileSync(path.join(h, 'site/index.php'), '<?php echo 1;');
  fs.writeFileSync(path.join(h, 'site/private.txt'), 'only the account reads this', { mode: 0o600 });
  execFileSync('chown', ['-R', `${account.uid}:${account.gid}`, h]);
  // Root's own file in the home, readable by root alone: a worker that had not become the account would read it.
  fs.writeFileSync(path.join(h, 'site/root-only.txt'), 'root', { mode: 0o600 });
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  destDir = makeDestinationDir();
  ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
  ok(cli(dataDir, ['job', 'add', '--name', 'inc', '--destination', 'disk', '--structure', 'incremental', '--accounts', account.username, '--items', 'files']));
  ok(cli(dataDir, ['job', 'add', '--name', 'arc', '--destination', 'disk', '--structure', 'archive', '--accounts', account.username, '--items', 'files']));
});

after(() => {
  removeAccount(account);
  for (const d of [homeRoot, dataDir, destDir]) fs.rmSync(d, { recursive: true, force: true });
});

const paths = (snapshot: string): string[] => (ok(cli(dataDir, ['snapshot', 'files', snapshot, 'site'])) as { path: string }[]).map((f) => f.path).sort();

test('a backup through the standby worker reads the home as the account: root-only files are skipped, the account\'s are kept', () => {
  const first = ok(cli(dataDir, ['backup', '--job', 'inc', '--wait'])).results[0];
  assert.equal(first.status, 'partial');
  assert.equal(first.skipped, 1);
  const manifest = ok(cli(dataDir, ['snapshot', 'show', first.snapshot])).manifest;
  assert.deepEqual(manifest.skipped.map((s: { path: string; reason: string }) => [s.path, s.reason]), [['site/root-only.txt', 'cannot read: EACCES']]);
  assert.deepEqual(paths(first.snapshot), ['site/index.php', 'site/private.txt']);
  // The second run sends the previous index to the standby after its header: unchanged files are linked, not read again.
  const second = ok(cli(dataDir, ['backup', '--job', 'inc', '--wait'])).results[0];
  const m2 = ok(cli(dataDir, ['snapshot', 'show', second.snapshot])).manifest;
  assert.equal(m2.previous, first.snapshot);
  assert.equal(second.storedBytes, 0, 'nothing new stored: every file was unchanged');
  assert.deepEqual(paths(second.snapshot), ['site/index.php', 'site/private.txt']);
});

test('an archive backup takes the standby worker too, its tar arriving on the standby\'s fd 4', () => {
  const r = ok(cli(dataDir, ['backup', '--job', 'arc', '--wait'])).results[0];
  assert.equal(r.skipped, 1);
  assert.deepEqual(paths(r.snapshot), ['site/index.php', 'site/private.txt']);
  const verified = ok(cli(dataDir, ['snapshot', 'verify', r.snapshot]));
  assert.notEqual(verified.result, 'damaged');
});

test('the next backup worker is the standby, and it walks the home as the account', async () => {
  const standby = prestartAccountWorker();
  const panelAccount = { username: account.username, uid: account.uid, gid: account.gid, home: account.home } as Parameters<typeof spawnAccountWorker>[0];
  const worker = spawnAccountWorker(panelAccount, { mode: 'backup', excludes: [], previous: false, tar: false });
  assert.equal(worker.child.pid, standby);
  worker.input.end();
  const seen: string[] = [];
  const skipped: string[] = [];
  for await (const ev of parseEntryStream(worker.output)) {
    if (ev.type === 'entry') seen.push(ev.entry.path);
    else if (ev.type === 'notice' && ev.kind === 'S') skipped.push(`${ev.path}: ${ev.text}`);
  }
  await worker.done;
  assert.deepEqual(seen.sort(), ['', 'site', 'site/index.php', 'site/private.txt']);
  assert.deepEqual(skipped, ['site/root-only.txt: cannot read: EACCES']);
  // Taken once: the worker after it is started for its account.
  const next = spawnAccountWorker(panelAccount, { mode: 'backup', excludes: [], previous: false, tar: false });
  assert.notEqual(next.child.pid, standby);
  next.child.kill('SIGKILL');
  await next.done.catch(() => undefined);
});

test('a standby worker refuses a root identity before reading anything', async () => {
  const child = spawn(process.execPath, [WORKER], { stdio: ['pipe', 'ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH!, TIDEMARK_WORKER_STANDBY: '1' } });
  let stderr = '';
  let out = 0;
  child.stderr!.on('data', (d) => { stderr += d; });
  (child.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => { out += d.length; });
  child.stdin!.end(`${JSON.stringify({ identity: 'root:0:0', job: { mode: 'backup', home: account.home } })}\n`);
  const code = await new Promise((resolve) => child.on('close', resolve));
  assert.equal(code, 70);
  assert.match(stderr, /refusing to run with an invalid or root identity/);
  assert.equal(out, 0);
});

test('a standby worker nobody takes ends when root does', async () => {
  const script = `const { prestartAccountWorker } = await import(${JSON.stringify(SPAWN_WORKER)}); console.log(prestartAccountWorker());`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 0, r.stderr);
  const pid = Number(r.stdout.trim());
  assert.ok(pid > 0);
  const deadline = Date.now() + 20000;
  while (fs.existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))) {
    assert.ok(Date.now() < deadline, 'the standby worker outlived its root process');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
});

test('the CLI finds --data-dir before or after the command name, in both spellings', () => {
  assert.equal(globalOptionValue(['--data-dir', '/x', 'backup', '--job', 'j'], '--data-dir'), '/x');
  assert.equal(globalOptionValue(['--json', '--data-dir=/y', 'backup'], '--data-dir'), '/y');
  assert.equal(globalOptionValue(['--owner', '--data-dir', 'backup', '--data-dir', '/z'], '--data-dir'), '/z');
  assert.equal(globalOptionValue(['backup', '--job', 'j', '--data-dir', '/z'], '--data-dir'), '/z');
  assert.equal(globalOptionValue(['backup', '--', '--data-dir', '/z'], '--data-dir'), undefined);
});

test('a restore worker runs with V8 memory-saving heuristics, and without its optimizing compiler when the content comes by descriptor; a backup worker does neither', async () => {
  const panelAccount = { username: account.username, uid: account.uid, gid: account.gid, home: account.home } as Parameters<typeof spawnAccountWorker>[0];
  const argsOf = (pid: number): string[] => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  const restore = spawnAccountWorker(panelAccount, { mode: 'restore', intoFolder: 'tidemark-flags-check' });
  const byDescriptor = spawnAccountWorker(panelAccount, { mode: 'restore', intoFolder: 'tidemark-flags-check-fd', contentFds: 'blobs' });
  const backup = spawnAccountWorker(panelAccount, { mode: 'backup', excludes: [], previous: false, tar: false });
  try {
    assert.ok(argsOf(restore.child.pid!).includes('--optimize-for-size'));
    assert.ok(!argsOf(backup.child.pid!).includes('--optimize-for-size'));
    assert.ok(argsOf(backup.child.pid!).includes('--max-semi-space-size=2'));
    // Without V8's optimizing compiler only where the content comes by descriptor (spawn-worker.ts).
    assert.ok(argsOf(byDescriptor.child.pid!).includes('--optimize-for-size'));
    assert.ok(argsOf(byDescriptor.child.pid!).includes('--max-opt=1'));
    assert.ok(!argsOf(restore.child.pid!).includes('--max-opt=1'));
    assert.ok(!argsOf(backup.child.pid!).includes('--max-opt=1'));
  } finally {
    for (const w of [restore, byDescriptor, backup]) { w.child.kill('SIGKILL'); await w.done.catch(() => undefined); }
    fs.rmSync(path.join(account.home, 'tidemark-flags-check-fd'), { recursive: true, force: true });
    fs.rmSync(path.join(account.home, 'tidemark-flags-check'), { recursive: true, force: true });
  }
});

/** Everything the worker wrote to its tar: from a stream, or from the read end of its plain pipe. */
async function tarBytes(w: ReturnType<typeof spawnAccountWorker>): Promise<Buffer> {
  const source = w.tar ?? fs.createReadStream('', { fd: w.tarReadFd!, highWaterMark: 1 << 16 });
  const parts: Buffer[] = [];
  for await (const c of source) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

const panelAccountOf = (a: TestAccount): Parameters<typeof spawnAccountWorker>[0] =>
  ({ username: a.username, uid: a.uid, gid: a.gid, home: a.home }) as Parameters<typeof spawnAccountWorker>[0];

for (const tarFd of ['fd', 'pipe'] as const) {
  test(`an archive's worker asked for its tar as '${tarFd}' is the standby, and its tar holds the account's files only`, async () => {
    const standby = prestartAccountWorker();
    const worker = spawnAccountWorker(panelAccountOf(account), { mode: 'backup', excludes: [], previous: false, tar: true }, { tarFd });
    assert.equal(worker.child.pid, standby);
    assert.equal(tarFd === 'fd' ? worker.tarReadFd !== null && worker.tar === null : worker.tar !== null && worker.tarReadFd === null, true);
    worker.input.end();
    const [tar] = await Promise.all([tarBytes(worker), (async () => { for await (const _ of worker.output) { /* records */ } })()]);
    await worker.done;
    const text = tar.toString('latin1');
    assert.ok(text.includes('site/index.php') && text.includes('<?php echo 1;'));
    assert.ok(text.includes('only the account reads this'));
    assert.ok(!text.includes('site/root-only.txt'), 'the file only root may read is not in the tar');
  });
}

test("a worker started for its account (no standby) gives the read end of a plain pipe for 'fd'", async () => {
  const worker = spawnAccountWorker(panelAccountOf(account), { mode: 'backup', excludes: [], previous: false, tar: true }, { tarFd: 'fd' });
  assert.ok(worker.tarReadFd !== null && fs.fstatSync(worker.tarReadFd).isFIFO());
  worker.input.end();
  const [tar] = await Promise.all([tarBytes(worker), (async () => { for await (const _ of worker.output) { /* records */ } })()]);
  await worker.done;
  assert.ok(tar.toString('latin1').includes('<?php echo 1;'));
});
