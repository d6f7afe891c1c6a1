/**
 * npm run bench: Tidemark against GNU tar, gzip, pigz and rsync on the shared dataset,
 * in one run, on the same data, as a real account. Prints a table of seconds and ratios
 * and Tidemark's peak memory (root process + account worker).
 *   --files N      dataset size (default 20000, as the shared generator)
 *   --runs N       runs of each fast command, best kept (default 3)
 *   --no-ssh       leave out the rows over SSH
 *   --keep         keep the data for inspection
 * Every timing ends with `sync -f` of the filesystem written to (both sides): a command is
 * done when its output would survive a power cut, which Tidemark's own flushes promise and
 * the standard tools' do not, so without it their unflushed writes would be timed as done.
 * The SSH rows write to a private OpenSSH server on loopback (test/support/sshd.ts, never the
 * machine's own sshd), through a proxy in this process that counts the bytes sent to it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { startTestSshServer, type TestSshServer } from '../test/support/sshd.js';

const args = process.argv.slice(2);
const opt = (name: string, def: number): number => { const i = args.indexOf(`--${name}`); return i < 0 ? def : Number(args[i + 1]); };
const FILES = opt('files', 20000);
const RUNS = opt('runs', 3);
const KEEP = args.includes('--keep');
const SSH = !args.includes('--no-ssh');
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const CLI = path.join(REPO, 'dist/server/cli/main.js');
const GENERATOR = process.env.TIDEMARK_BENCH_GENERATOR ?? path.resolve(REPO, '../shared/bench/make-account.mjs');

interface Measure { seconds: number; peakKiB: number }

/** Peak resident memory of a process tree, sampled from /proc every 20 ms. */
function sampleTree(rootPid: number, peaks: Map<number, number>): void {
  const visit = (pid: number): void => {
    try {
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
      peaks.set(pid, Math.max(peaks.get(pid) ?? 0, hwm));
      for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
        const kids = fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
        for (const k of kids ? kids.split(/\s+/) : []) visit(Number(k));
      }
    } catch { /* exited */ }
  };
  visit(rootPid);
}

/** The filesystem the timed commands write to (set in main): flushed at the end of every timing. */
let flushTarget = '/';

async function timed(cmd: string, argv: string[], opts: { shell?: boolean } = {}): Promise<Measure> {
  // Whatever the preparation left (removals) is not the timed command's to flush.
  execFileSync('sync', ['-f', flushTarget]);
  const started = process.hrtime.bigint();
  const child = opts.shell ? spawn('bash', ['-c', cmd], { stdio: ['ignore', 'ignore', 'inherit'] }) : spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'inherit'] });
  const peaks = new Map<number, number>();
  const timer = setInterval(() => sampleTree(child.pid!, peaks), 20);
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  clearInterval(timer);
  execFileSync('sync', ['-f', flushTarget]);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (code !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed with ${code}`);
  // Peak of the whole tree: the largest sum is bounded by the sum of each process's peak.
  const peakKiB = [...peaks.values()].reduce((a, b) => a + b, 0);
  return { seconds, peakKiB };
}

async function best(runs: number, prepare: () => void, run: () => Promise<Measure>): Promise<Measure> {
  let seconds = Infinity;
  let peakKiB = 0;
  for (let i = 0; i < runs; i++) {
    prepare();
    const m = await run();
    seconds = Math.min(seconds, m.seconds);
    peakKiB = Math.max(peakKiB, m.peakKiB);
  }
  return { seconds, peakKiB };
}

const sh = (script: string): string => execFileSync('bash', ['-c', script], { encoding: 'utf8' });
const sizeOf = (p: string): number => fs.statSync(p).size;
/** Bytes of the files under a directory that have no other hard link: the data a run added. */
const newDataIn = (dir: string): number => Number(sh(`find ${dir} -type f -links 1 -printf '%s\\n' | awk '{s+=$1} END {print s+0}'`).trim());
const mib = (n: number): string => (n / 1048576).toFixed(2);

/** A TCP proxy on loopback that counts what clients send through it (SSH framing and encryption included). */
interface CountingProxy { port: number; sent: () => number; close: () => Promise<void> }

// In a worker thread: the benchmark's own synchronous calls must not stall the traffic.
const PROXY_SOURCE = `
const net = require('node:net');
const { workerData, parentPort } = require('node:worker_threads');
const counter = new BigInt64Array(workerData.counter);
const server = net.createServer((client) => {
  const upstream = net.connect({ host: '127.0.0.1', port: workerData.target, noDelay: true });
  client.setNoDelay(true);
  const end = () => { client.destroy(); upstream.destroy(); };
  for (const sock of [client, upstream]) { sock.on('error', end); sock.on('close', end); }
  client.on('data', (d) => { Atomics.add(counter, 0, BigInt(d.length)); });
  client.pipe(upstream);
  upstream.pipe(client);
});
server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));
`;

function countingProxy(targetPort: number): Promise<CountingProxy> {
  const shared = new SharedArrayBuffer(8);
  const counter = new BigInt64Array(shared);
  const worker = new Worker(PROXY_SOURCE, { eval: true, workerData: { target: targetPort, counter: shared } });
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (port: number) => resolve({
      port,
      sent: () => Number(Atomics.load(counter, 0)),
      close: async () => { await worker.terminate(); },
    }));
  });
}

/** Runs `run` and reports, beside its measure, the bytes sent through the proxy meanwhile. */
async function counted(proxy: CountingProxy, run: () => Promise<Measure>): Promise<Measure & { sentBytes: number }> {
  const before = proxy.sent();
  const m = await run();
  return { ...m, sentBytes: proxy.sent() - before };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the benchmark creates a Linux user: run it as root');
  for (const tool of ['tar', 'gzip', 'pigz', 'rsync']) {
    if (spawnSync('which', [tool]).status !== 0) throw new Error(`${tool} is missing (apt-get install ${tool})`);
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-bench-'));
  fs.chmodSync(work, 0o755);
  flushTarget = work;
  const homes = path.join(work, 'homes');
  fs.mkdirSync(homes, { mode: 0o755 });
  const user = `tmbench${process.pid % 100000}`;
  const home = path.join(homes, user);
  execFileSync('useradd', ['--create-home', '--home-dir', home, '--shell', '/usr/sbin/nologin', '--user-group', user]);
  const out = path.join(work, 'out');
  fs.mkdirSync(out);
  const dataDir = path.join(work, 'state');
  fs.mkdirSync(dataDir);
  fs.writeFileSync(path.join(dataDir, 'config.json'), JSON.stringify({ panel: 'standalone', homeRoots: [homes] }));
  const tm = (...a: string[]): string => execFileSync(process.execPath, [CLI, '--data-dir', dataDir, ...a], { encoding: 'utf8' });
  const rows: { name: string; m: Measure; size?: number; ref?: string }[] = [];
  let server: TestSshServer | null = null;
  let proxy: CountingProxy | null = null;
  try {
    process.stdout.write(`dataset: ${sh(`node ${GENERATOR} ${home} --files ${FILES}`).trim()}\n`);
    sh(`chown -R ${user}:${user} ${home}`);
    sh(`tar cf /dev/null -C ${home} .`); // warm the page cache
    for (const s of ['archive', 'compressed', 'incremental']) {
      fs.mkdirSync(path.join(out, `tm-${s}`));
      tm('destination', 'add', '--name', s, '--type', 'local', '--path', path.join(out, `tm-${s}`));
      tm('job', 'add', '--name', s, '--destination', s, '--structure', s, '--accounts', user, '--items', 'files');
    }
    const clean = (p: string) => () => fs.rmSync(p, { recursive: true, force: true });
    const cleanDest = (s: string) => () => { for (const n of fs.readdirSync(path.join(out, `tm-${s}`))) if (n !== 'tidemark.json') fs.rmSync(path.join(out, `tm-${s}`, n), { recursive: true, force: true }); };
    const tarOut = path.join(out, 'gnu.tar');
    rows.push({ name: 'GNU tar cf', m: await best(RUNS, clean(tarOut), () => timed('tar', ['cf', tarOut, '-C', home, '.'])) });
    const tarSize = sizeOf(tarOut);
    rows.push({ name: 'tidemark archive', ref: 'GNU tar cf', m: await best(RUNS, cleanDest('archive'), () => timed(process.execPath, [CLI, '--data-dir', dataDir, 'backup', '--job', 'archive', '--wait'])) });
    fs.rmSync(tarOut, { force: true });

    const gzOut = path.join(out, 'gnu.tar.gz');
    rows.push({ name: 'tar | gzip -6', m: await best(1, clean(gzOut), () => timed(`tar cf - -C ${home} . | gzip -6 > ${gzOut}`, [], { shell: true })), size: sizeOf(gzOut) });
    const pigzOut = path.join(out, 'pigz.tar.gz');
    rows.push({ name: 'tar | pigz -6', ref: 'tar | gzip -6', m: await best(RUNS, clean(pigzOut), () => timed(`tar cf - -C ${home} . | pigz -6 > ${pigzOut}`, [], { shell: true })), size: sizeOf(pigzOut) });
    rows.push({ name: 'tidemark compressed', ref: 'tar | gzip -6', m: await best(RUNS, cleanDest('compressed'), () => timed(process.execPath, [CLI, '--data-dir', dataDir, 'backup', '--job', 'compressed', '--wait'])) });
    const tmGz = sh(`find ${path.join(out, 'tm-compressed')} -name files.tar.gz | head -1`).trim();
    rows[rows.length - 1]!.size = sizeOf(tmGz);
    fs.rmSync(gzOut, { force: true });
    fs.rmSync(pigzOut, { force: true });

    const r1 = path.join(out, 'rsync-1');
    rows.push({ name: 'rsync -a (first copy)', m: await best(1, clean(r1), () => timed('rsync', ['-a', `${home}/`, `${r1}/`])) });
    rows.push({ name: 'tidemark incremental (first)', ref: 'rsync -a (first copy)', m: await best(1, cleanDest('incremental'), () => timed(process.execPath, [CLI, '--data-dir', dataDir, 'backup', '--job', 'incremental', '--wait'])) });

    // Over SSH: rsync through OpenSSH's client, Tidemark through its own SSH destination, to the same server.
    let remote = '';
    let sshCmd = '';
    let sshLogin = '';
    let sshFirst: { rsync: number; tidemark: number } | null = null;
    const remoteDir = (name: string): string => path.join(remote, name);
    const cleanRemote = (name: string, keep: string[] = []) => (): void => {
      const dir = remoteDir(name);
      if (!fs.existsSync(dir)) return;
      for (const n of fs.readdirSync(dir)) if (!keep.includes(n)) fs.rmSync(path.join(dir, n), { recursive: true, force: true });
    };
    if (SSH) {
      server = await startTestSshServer({ allowCommands: true });
      proxy = await countingProxy(server.port);
      remote = server.remoteRoot;
      const keyFile = path.join(work, 'ssh-key');
      fs.writeFileSync(keyFile, server.privateKey, { mode: 0o600 });
      sshCmd = `ssh -p ${proxy.port} -i ${keyFile} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes`;
      sshLogin = `${server.user}@127.0.0.1`;
      const owner = `${server.user}:${server.user}`;
      for (const s of ['archive', 'compressed', 'incremental']) {
        fs.mkdirSync(remoteDir(`tm-${s}`));
        sh(`chown ${owner} ${remoteDir(`tm-${s}`)}`);
        tm('destination', 'add', '--name', `ssh-${s}`, '--type', 'ssh', '--host', '127.0.0.1', '--port', String(proxy.port), '--user', server.user, '--key-file', keyFile, '--path', remoteDir(`tm-${s}`));
        tm('job', 'add', '--name', `ssh-${s}`, '--destination', `ssh-${s}`, '--structure', s, '--accounts', user, '--items', 'files');
      }
      const p = proxy;
      const r1ssh = await counted(p, () => best(1, cleanRemote('rsync-1'), () => timed('rsync', ['-a', '-e', sshCmd, `${home}/`, `${sshLogin}:${remoteDir('rsync-1')}/`])));
      rows.push({ name: 'rsync -a over ssh (first copy)', m: r1ssh });
      const t1ssh = await counted(p, () => best(1, cleanRemote('tm-incremental', ['tidemark.json']), () => timed(process.execPath, [CLI, '--data-dir', dataDir, 'backup', '--job', 'ssh-incremental', '--wait'])));
      rows.push({ name: 'tidemark incremental over ssh (first)', ref: 'rsync -a over ssh (first copy)', m: t1ssh });
      sshFirst = { rsync: r1ssh.sentBytes, tidemark: t1ssh.sentBytes };
    }
    process.stdout.write(`mutate: ${sh(`node ${GENERATOR} ${home} --mutate 1`).trim()}\n`);
    sh(`chown -R ${user}:${user} ${home}`);
    sh(`tar cf /dev/null -C ${home} .`);
    const r2 = path.join(out, 'rsync-2');
    rows.push({ name: 'rsync -a --link-dest (1% changed)', m: await best(RUNS, clean(r2), () => timed('rsync', ['-a', `--link-dest=${r1}`, `${home}/`, `${r2}/`])) });
    // Each Tidemark second run starts from the same first snapshot: later snapshots are removed between runs.
    const incDir = path.join(out, 'tm-incremental', user);
    const firstSnap = fs.readdirSync(incDir).find((n) => !n.startsWith('.'))!;
    const dropLater = (): void => {
      for (const n of fs.readdirSync(incDir)) if (n !== firstSnap) fs.rmSync(path.join(incDir, n), { recursive: true, force: true });
      const db = new Database(path.join(dataDir, 'tidemark.sqlite'));
      db.prepare(`DELETE FROM snapshots WHERE id != ? AND destination_id = (SELECT id FROM destinations WHERE name = 'incremental')`).run(firstSnap);
      db.close();
    };
    rows.push({ name: 'tidemark incremental (1% changed)', ref: 'rsync -a --link-dest (1% changed)', m: await best(RUNS, dropLater, () => timed(process.execPath, [CLI, '--data-dir', dataDir, 'backup', '--job', 'incremental', '--wait'])) });
    const secondSnap = fs.readdirSync(incDir).find((n) => !n.startsWith('.') && n !== firstSnap)!;
    const newBytes = newDataIn(path.join(incDir, secondSnap, 'files'));
    const rsyncNew = newDataIn(r2);

    const sshReport: string[] = [];
    if (server && proxy) {
      const p = proxy;
      const r2ssh = await counted(p, () => best(RUNS, cleanRemote('rsync-2'), () => timed('rsync', ['-a', `--link-dest=${remoteDir('rsync-1')}`, '-e', sshCmd, `${home}/`, `${sshLogin}:${remoteDir('rsync-2')}/`])));
      rows.push({ name: 'rsync -a --link-dest over ssh (1% changed)', m: r2ssh });
      // As locally: every second run starts from the same first snapshot.
      const sshIncDir = path.join(remoteDir('tm-incremental'), user);
      const sshFirstSnap = fs.readdirSync(sshIncDir).find((n) => !n.startsWith('.'))!;
      const dropLaterSsh = (): void => {
        for (const n of fs.readdirSync(sshIncDir)) if (n !== sshFirstSnap) fs.rmSync(path.join(sshIncDir, n), { recursive: true, force: true });
        const db = new Database(path.join(dataDir, 'tidemark.sqlite'));
        db.prepare(`DELETE FROM snapshots WHERE id != ? AND destination_id = (SELECT id FROM destinations WHERE name = 'ssh-incremental')`).run(sshFirstSnap);
        db.close();
      };
      const t2ssh = await counted(p, () => best(RUNS, dropLaterSsh, () => timed(process.execPath, [CLI, '--data-dir', dataDir, 'backup', '--job', 'ssh-incremental', '--wait'])));
      rows.push({ name: 'tidemark incremental over ssh (1% changed)', ref: 'rsync -a --link-dest over ssh (1% changed)', m: t2ssh });
      const stored = JSON.parse(tm('--json', 'snapshot', 'list', '--destination', 'ssh-incremental'))[0].storedBytes as number;
      const sshSecond = fs.readdirSync(sshIncDir).find((n) => !n.startsWith('.') && n !== sshFirstSnap)!;
      // The counts cover all runs of a row: divide by the runs.
      sshReport.push(`over ssh, sent to the server (proxy count, SSH framing included): first run rsync ${mib(sshFirst!.rsync)} MiB, tidemark ${mib(sshFirst!.tidemark)} MiB; `
        + `second run rsync ${mib(r2ssh.sentBytes / RUNS)} MiB, tidemark ${mib(t2ssh.sentBytes / RUNS)} MiB`);
      sshReport.push(`new data in the second snapshot over ssh: tidemark ${mib(newDataIn(path.join(sshIncDir, sshSecond, 'files')))} MiB (storedBytes ${mib(stored)} MiB), rsync ${mib(newDataIn(remoteDir('rsync-2')))} MiB`);

      // One archive each way, on the data as it is now (after the change); whole copies over SSH run once.
      const sshTar = remoteDir('gnu.tar');
      rows.push({ name: 'tar cf - | ssh cat', m: await best(1, cleanRemote('gnu.tar'), () => timed(`tar cf - -C ${home} . | ${sshCmd} ${sshLogin} 'cat > ${sshTar}'`, [], { shell: true })) });
      fs.rmSync(sshTar, { force: true });
      rows.push({ name: 'tidemark archive over ssh', ref: 'tar cf - | ssh cat', m: await best(1, cleanRemote('tm-archive', ['tidemark.json']), () => timed(process.execPath, [CLI, '--data-dir', dataDir, 'backup', '--job', 'ssh-archive', '--wait'])) });
      cleanRemote('tm-archive', ['tidemark.json'])();
      const sshGz = remoteDir('gnu.tar.gz');
      rows.push({ name: 'tar | gzip -6 | ssh cat', m: await best(1, cleanRemote('gnu.tar.gz'), () => timed(`tar cf - -C ${home} . | gzip -6 | ${sshCmd} ${sshLogin} 'cat > ${sshGz}'`, [], { shell: true })), size: sizeOf(sshGz) });
      fs.rmSync(sshGz, { force: true });
      rows.push({ name: 'tidemark compressed over ssh', ref: 'tar | gzip -6 | ssh cat', m: await best(1, cleanRemote('tm-compressed', ['tidemark.json']), () => timed(process.execPath, [CLI, '--data-dir', dataDir, 'backup', '--job', 'ssh-compressed', '--wait'])) });
      rows[rows.length - 1]!.size = sizeOf(sh(`find ${remoteDir('tm-compressed')} -name files.tar.gz | head -1`).trim());
      cleanRemote('tm-compressed', ['tidemark.json'])();
    }

    const byName = new Map(rows.map((r) => [r.name, r]));
    process.stdout.write(`\n${'command'.padEnd(44)} ${'seconds'.padStart(8)} ${'ratio'.padStart(7)} ${'peak MiB'.padStart(9)} ${'output MiB'.padStart(11)}\n`);
    for (const r of rows) {
      const ref = r.ref ? byName.get(r.ref) : undefined;
      const ratio = ref ? (r.m.seconds / ref.m.seconds).toFixed(2) + 'x' : '';
      process.stdout.write(`${r.name.padEnd(44)} ${r.m.seconds.toFixed(2).padStart(8)} ${ratio.padStart(7)} ${(r.m.peakKiB / 1024).toFixed(0).padStart(9)} ${(r.size ? (r.size / 1048576).toFixed(1) : '').padStart(11)}\n`);
    }
    const g = byName.get('tar | gzip -6')!;
    const c = byName.get('tidemark compressed')!;
    const a = byName.get('tidemark archive')!;
    const i2 = byName.get('tidemark incremental (1% changed)')!;
    const peak = Math.max(...rows.filter((r) => r.name.startsWith('tidemark')).map((r) => r.m.peakKiB)) / 1024;
    process.stdout.write(`\nGNU tar archive ${(tarSize / 1048576).toFixed(1)} MiB\n`);
    process.stdout.write(`new data in the second snapshot: tidemark ${(newBytes / 1048576).toFixed(2)} MiB, rsync ${(rsyncNew / 1048576).toFixed(2)} MiB\n`);
    for (const line of sshReport) process.stdout.write(`${line}\n`);
    process.stdout.write('\ntargets (2 cores):\n');
    const check = (ok: boolean, text: string): void => { process.stdout.write(`  ${ok ? 'met ' : 'MISS'}  ${text}\n`); };
    check(a.m.seconds / byName.get('GNU tar cf')!.m.seconds <= 1.3, `archive within 1.3x of GNU tar cf: ${(a.m.seconds / byName.get('GNU tar cf')!.m.seconds).toFixed(2)}x`);
    check(g.m.seconds / c.m.seconds >= 1.5, `compressed at least 1.5x faster than tar | gzip -6: ${(g.m.seconds / c.m.seconds).toFixed(2)}x faster`);
    check(c.size! <= g.size! * 1.02, `compressed output no more than 2 % larger than gzip -6: ${((c.size! / g.size! - 1) * 100).toFixed(2)} %`);
    check(i2.m.seconds / byName.get('rsync -a --link-dest (1% changed)')!.m.seconds <= 1.5, `second incremental within 1.5x of rsync --link-dest: ${(i2.m.seconds / byName.get('rsync -a --link-dest (1% changed)')!.m.seconds).toFixed(2)}x`);
    const s2 = byName.get('tidemark incremental over ssh (1% changed)');
    if (s2) {
      const ratio = s2.m.seconds / byName.get('rsync -a --link-dest over ssh (1% changed)')!.m.seconds;
      check(ratio <= 1.5, `second incremental over ssh within 1.5x of rsync --link-dest over ssh: ${ratio.toFixed(2)}x`);
    }
    check(peak < 300, `peak memory under 300 MB: ${peak.toFixed(0)} MiB`);
  } finally {
    await proxy?.close();
    await server?.stop().catch((err: unknown) => process.stderr.write(`bench: stopping the test sshd: ${(err as Error).message}\n`));
    try { execFileSync('userdel', ['--force', user], { stdio: 'ignore' }); } catch { /* gone */ }
    try { execFileSync('groupdel', [user], { stdio: 'ignore' }); } catch { /* gone */ }
    if (!KEEP) fs.rmSync(work, { recursive: true, force: true });
    else process.stdout.write(`kept ${work}\n`);
  }
}

main().catch((err: unknown) => { process.stderr.write(`bench: ${(err as Error).message}\n`); process.exit(1); });
