/**
 * npm run bench: Tidemark against GNU tar, gzip, pigz and rsync on the shared dataset,
 * in one run, on the same data, as a real account. Prints a table of seconds and ratios
 * and Tidemark's peak memory (root process + account worker).
 *   --files N      dataset size (default 20000, as the shared generator)
 *   --runs N       runs of each fast command, best kept (default 3)
 *   --keep         keep the data for inspection
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

const args = process.argv.slice(2);
const opt = (name: string, def: number): number => { const i = args.indexOf(`--${name}`); return i < 0 ? def : Number(args[i + 1]); };
const FILES = opt('files', 20000);
const RUNS = opt('runs', 3);
const KEEP = args.includes('--keep');
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

async function timed(cmd: string, argv: string[], opts: { shell?: boolean } = {}): Promise<Measure> {
  const started = process.hrtime.bigint();
  const child = opts.shell ? spawn('bash', ['-c', cmd], { stdio: ['ignore', 'ignore', 'inherit'] }) : spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'inherit'] });
  const peaks = new Map<number, number>();
  const timer = setInterval(() => sampleTree(child.pid!, peaks), 20);
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  clearInterval(timer);
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

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the benchmark creates a Linux user: run it as root');
  for (const tool of ['tar', 'gzip', 'pigz', 'rsync']) {
    if (spawnSync('which', [tool]).status !== 0) throw new Error(`${tool} is missing (apt-get install ${tool})`);
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-bench-'));
  fs.chmodSync(work, 0o755);
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
      db.prepare(`DELETE FROM snapshots WHERE id != ? AND structure = 'incremental'`).run(firstSnap);
      db.close();
    };
    rows.push({ name: 'tidemark incremental (1% changed)', ref: 'rsync -a --link-dest (1% changed)', m: await best(RUNS, dropLater, () => timed(process.execPath, [CLI, '--data-dir', dataDir, 'backup', '--job', 'incremental', '--wait'])) });
    const secondSnap = fs.readdirSync(incDir).find((n) => !n.startsWith('.') && n !== firstSnap)!;
    const newBytes = Number(sh(`find ${path.join(incDir, secondSnap, 'files')} -type f -links 1 -printf '%s\\n' | awk '{s+=$1} END {print s+0}'`).trim());
    const rsyncNew = Number(sh(`find ${r2} -type f -links 1 -printf '%s\\n' | awk '{s+=$1} END {print s+0}'`).trim());

    const byName = new Map(rows.map((r) => [r.name, r]));
    process.stdout.write(`\n${'command'.padEnd(36)} ${'seconds'.padStart(8)} ${'ratio'.padStart(7)} ${'peak MiB'.padStart(9)} ${'output MiB'.padStart(11)}\n`);
    for (const r of rows) {
      const ref = r.ref ? byName.get(r.ref) : undefined;
      const ratio = ref ? (r.m.seconds / ref.m.seconds).toFixed(2) + 'x' : '';
      process.stdout.write(`${r.name.padEnd(36)} ${r.m.seconds.toFixed(2).padStart(8)} ${ratio.padStart(7)} ${(r.m.peakKiB / 1024).toFixed(0).padStart(9)} ${(r.size ? (r.size / 1048576).toFixed(1) : '').padStart(11)}\n`);
    }
    const g = byName.get('tar | gzip -6')!;
    const c = byName.get('tidemark compressed')!;
    const a = byName.get('tidemark archive')!;
    const i2 = byName.get('tidemark incremental (1% changed)')!;
    const peak = Math.max(...rows.filter((r) => r.name.startsWith('tidemark')).map((r) => r.m.peakKiB)) / 1024;
    process.stdout.write(`\nGNU tar archive ${(tarSize / 1048576).toFixed(1)} MiB\n`);
    process.stdout.write(`new data in the second snapshot: tidemark ${(newBytes / 1048576).toFixed(2)} MiB, rsync ${(rsyncNew / 1048576).toFixed(2)} MiB\n`);
    process.stdout.write('\ntargets (2 cores):\n');
    const check = (ok: boolean, text: string): void => { process.stdout.write(`  ${ok ? 'met ' : 'MISS'}  ${text}\n`); };
    check(a.m.seconds / byName.get('GNU tar cf')!.m.seconds <= 1.3, `archive within 1.3x of GNU tar cf: ${(a.m.seconds / byName.get('GNU tar cf')!.m.seconds).toFixed(2)}x`);
    check(g.m.seconds / c.m.seconds >= 1.5, `compressed at least 1.5x faster than tar | gzip -6: ${(g.m.seconds / c.m.seconds).toFixed(2)}x faster`);
    check(c.size! <= g.size! * 1.02, `compressed output no more than 2 % larger than gzip -6: ${((c.size! / g.size! - 1) * 100).toFixed(2)} %`);
    check(i2.m.seconds / byName.get('rsync -a --link-dest (1% changed)')!.m.seconds <= 1.5, `second incremental within 1.5x of rsync --link-dest: ${(i2.m.seconds / byName.get('rsync -a --link-dest (1% changed)')!.m.seconds).toFixed(2)}x`);
    check(peak < 300, `peak memory under 300 MB: ${peak.toFixed(0)} MiB`);
  } finally {
    try { execFileSync('userdel', ['--force', user], { stdio: 'ignore' }); } catch { /* gone */ }
    try { execFileSync('groupdel', [user], { stdio: 'ignore' }); } catch { /* gone */ }
    if (!KEEP) fs.rmSync(work, { recursive: true, force: true });
    else process.stdout.write(`kept ${work}\n`);
  }
}

main().catch((err: unknown) => { process.stderr.write(`bench: ${(err as Error).message}\n`); process.exit(1); });
