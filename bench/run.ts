/**
 * npm run bench: Tidemark against GNU tar, gzip, pigz, rsync, restic and borg on the shared
 * dataset, in one run, on the same data, as a real account. See docs/benchmarks.md.
 *   --files N      dataset size (default 20000, as the shared generator)
 *   --runs N       runs of each command, in turns, best kept (default 3)
 *   --no-ssh       leave out the rows over SSH
 *   --no-peers     leave out restic and borg (else they must be installed)
 *   --no-restore   leave out the restore rows
 *   --scale        also the key rows at 2,000, 20,000 and 200,000 files, and 200 small accounts
 *   --scale-files A,B,C  the sizes of --scale (default 2000,20000,200000; `none`: only the small accounts)
 *   --accounts N   the number of small accounts of --scale (default 200)
 *   --fixed-cost   only the fixed-cost row (an empty account), without the dataset
 *   --same-priority  Tidemark's helpers at the tools' priority (queue nice 0, no ionice)
 *   --catalog      also the catalog rows (1,000 accounts x 30 snapshots, a 100,000-entry folder)
 *   --json FILE    write every figure as JSON
 *   --svg FILE     where --scale writes its plot (default docs/benchmarks-scale.svg)
 *   --no-main      leave out the rows above (with --scale or --catalog: only those)
 *   --keep         keep the data for inspection
 * Every timing ends with `sync -f` of the filesystem written to (both sides): a command is
 * done when its output would survive a power cut, which Tidemark's own flushes promise and
 * the standard tools' do not, so without it their unflushed writes would be timed as done.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { sh } from './measure.js';
import { borg, missingPeers, restic, type Peer } from './peers.js';
import { Results } from './report.js';
import { addLocalJobs, archives, firstBackups, fixedCost, restores, secondBackups, type LocalSetup } from './rows-local.js';
import { sshArchives, sshFirst, sshRestore, sshSecond, startSsh, type SshSide } from './rows-ssh.js';
import { createWorld, generate, GENERATOR, mutate, REPO, type World } from './setup.js';
import { runScale } from './rows-scale.js';
import { runCatalog } from './rows-catalog.js';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => { const i = args.indexOf(`--${name}`); return i < 0 ? undefined : args[i + 1]; };
const num = (name: string, def: number): number => Number(opt(name) ?? def);
const flag = (name: string): boolean => args.includes(`--${name}`);

export interface Options {
  files: number; runs: number; ssh: boolean; peers: boolean; restore: boolean; keep: boolean;
  scale: boolean; scaleFiles: number[]; accounts: number; catalog: boolean; json: string | undefined; svg: string; main: boolean; fixedCostOnly: boolean; samePriority: boolean;
}

const options: Options = {
  files: num('files', 20000), runs: num('runs', 3), ssh: !flag('no-ssh'), peers: !flag('no-peers'), restore: !flag('no-restore'),
  keep: flag('keep'), scale: flag('scale'), scaleFiles: opt('scale-files') === 'none' ? [] : (opt('scale-files') ?? '2000,20000,200000').split(',').map(Number),
  accounts: num('accounts', 200), fixedCostOnly: flag('fixed-cost'), samePriority: flag('same-priority'),
  catalog: flag('catalog'), json: opt('json'), main: !flag('no-main'), svg: opt('svg') ?? path.join(REPO, 'docs/benchmarks-scale.svg'),
};

function preflight(): void {
  if (process.getuid?.() !== 0) throw new Error('the benchmark creates Linux users: run it as root');
  if (!fs.existsSync(GENERATOR)) throw new Error(`no dataset generator at ${GENERATOR}: set TIDEMARK_BENCH_GENERATOR to make-account.mjs`);
  const missing = ['tar', 'gzip', 'pigz', 'rsync'].filter((t) => spawnSync('which', [t]).status !== 0);
  if (options.peers) missing.push(...missingPeers());
  if (missing.length) {
    throw new Error(`missing: ${missing.join(', ')}; install them with\n  apt-get install ${missing.join(' ')}\n`
      + (options.peers ? 'or leave out restic and borg with --no-peers' : ''));
  }
}

/** The rows of one run on the dataset: backups, archives, restores, peers, SSH, fixed cost. */
async function mainRows(world: World, results: Results, log: (s: string) => void): Promise<void> {
  const account = world.addAccount(`tmbench${process.pid % 100000}`);
  const dataset = generate(account, options.files);
  log(`dataset: ${dataset}`);
  results.facts.dataset = dataset;
  const peers: Peer[] = options.peers ? [restic(world.work, account.home), borg(world.work, account.home)] : [];
  results.facts.peers = Object.fromEntries(peers.map((p) => [p.name, { version: p.version, setting: p.setting }]));
  const s: LocalSetup = { world, account, runs: options.runs, peers, results };
  addLocalJobs(s);
  let ssh: SshSide | null = null;
  try {
    log('first backups'); await firstBackups(s);
    if (options.ssh) { ssh = await startSsh(s); log('first backups over ssh'); await sshFirst(s, ssh); }
    const changed = mutate(account, 1);
    log(`change: ${changed}`);
    results.facts.change = changed;
    log('second backups'); await secondBackups(s);
    if (ssh) { log('second backups over ssh'); await sshSecond(s, ssh); }
    log('archives'); const tarFile = await archives(s, 1);
    if (options.restore) {
      log('restores'); await restores(s, tarFile);
      if (ssh) { log('restore from ssh'); await sshRestore(s, ssh); }
    }
    // No goal on these: after the rows that have one.
    if (ssh) { log('archives over ssh'); await sshArchives(s, ssh); }
    log('fixed cost'); await fixedCost(s, Math.max(5, options.runs));
    const peak = Math.max(...results.rows.filter((r) => r.name.startsWith('tidemark')).map((r) => r.m.peakKiB)) / 1024;
    results.check(`Tidemark's peak memory at ${options.files} files`, peak, 300, 'MiB');
  } finally {
    for (const p of peers) p.remove();
    await ssh?.close();
    // The dataset is not needed by --scale and --catalog: its disk space is.
    if (!options.keep) {
      fs.rmSync(account.home, { recursive: true, force: true });
      for (const n of fs.readdirSync(world.out)) fs.rmSync(path.join(world.out, n), { recursive: true, force: true });
    }
  }
}

/** --fixed-cost: the fixed-cost row alone, on an account of its own (no dataset, no peers). */
async function fixedCostRow(world: World, results: Results, log: (s: string) => void): Promise<void> {
  const account = world.addAccount(`tmbench${process.pid % 100000}`);
  log('fixed cost');
  await fixedCost({ world, account, runs: options.runs, peers: [], results }, Math.max(5, options.runs));
}

async function main(): Promise<void> {
  preflight();
  const started = new Date();
  const results = new Results();
  const save = (partial: boolean): void => {
    if (!options.json) return;
    results.writeJson(options.json, {
      started: started.toISOString(), finished: partial ? null : new Date().toISOString(), partial, options,
      machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memoryMiB: Math.round(os.totalmem() / 1048576), loadAverage: os.loadavg(), kernel: os.release(), node: process.version },
      tools: { tar: sh('tar --version | head -1').trim(), rsync: sh('rsync --version | head -1').trim(), pigz: sh('pigz --version 2>&1').trim(), gzip: sh('gzip --version | head -1').trim() },
    });
  };
  let shown = 0;
  let done = false;
  // At every step: the rows measured since the last one, and the JSON so far (a run cut short keeps its figures).
  const log = (s: string): void => {
    for (const r of results.rows.slice(shown)) process.stdout.write(`    ${r.name}: ${r.m.seconds.toFixed(2)} s (${r.m.all.map((x) => x.toFixed(2)).join(' ')})\n`);
    shown = results.rows.length;
    if (!done) save(true);
    process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${s}\n`);
  };
  const world = createWorld({ samePriority: options.samePriority });
  // Stopped (Ctrl-C, kill): the users and the data go too; the test sshd's watchdog removes its own.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => { process.stdout.write(`bench: ${sig}, cleaning up\n`); world.close(options.keep); process.exit(130); });
  }
  try {
    if (options.fixedCostOnly) await fixedCostRow(world, results, log);
    else if (options.main) await mainRows(world, results, log);
    if (options.scale) { log('scale'); await runScale(world, options, results, log); }
    if (options.catalog) { log('catalog'); await runCatalog(world, results, log); }
    results.print();
    for (const [k, v] of Object.entries(results.facts)) process.stdout.write(`${k}: ${JSON.stringify(v)}\n`);
    save(false);
    done = true;
    if (options.json) log(`wrote ${options.json}`);
    log(`load average at the end: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  } finally {
    world.close(options.keep);
  }
}

main().catch((err: unknown) => { process.stderr.write(`bench: ${(err as Error).message}\n`); process.exit(1); });
