/**
 * npm run bench: Tidemark against GNU tar, gzip, pigz, rsync, restic and borg on the shared
 * dataset, in one run, on the same data, as a real account. See docs/benchmarks.md.
 * Options: USAGE below (`--help`).
 * Every timing ends with `sync -f` of the filesystem written to (both sides): a command is
 * done when its output would survive a power cut, which Tidemark's own flushes promise and
 * the standard tools' do not, so without it their unflushed writes would be timed as done.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { sh } from './measure.js';
import { borg, missingPeers, restic, type Peer } from './peers.js';
import { Results } from './report.js';
import { describeProbe, probeMachine, type MachineProbe } from './machine-probe.js';
import { addLocalJobs, archives, firstBackups, fixedCost, restores, restoreSetup, secondBackups, type LocalSetup } from './rows-local.js';
import { sshArchives, sshFirst, sshRestore, sshSecond, startSsh, type SshSide } from './rows-ssh.js';
import { createWorld, generate, GENERATOR, mutate, REPO, type World } from './setup.js';
import { runScale } from './rows-scale.js';
import { runCatalog } from './rows-catalog.js';

export interface Options {
  files: number; runs: number; ssh: boolean; sshArchives: boolean; local: boolean; peers: boolean; restore: boolean; keep: boolean;
  scale: boolean; scaleFiles: number[]; accounts: number; catalog: boolean; json: string | undefined; svg: string; main: boolean; fixedCostOnly: boolean; samePriority: boolean;
  restoresOnly: boolean;
}

const USAGE = `usage: npm run bench -- [options]   (as root; see docs/benchmarks.md)
  --files N            dataset size (default 20000)
  --runs N             runs of each command, in turns, best kept (default 3)
  --no-ssh             leave out the rows over SSH
  --no-local           leave out the rows on the local disk (with SSH: only the SSH rows)
  --no-ssh-archives    leave out the archive and compressed rows over SSH (they have no goal)
  --no-peers           leave out restic and borg (else they must be installed)
  --no-restore         leave out the restore rows
  --restores-only      only the restore rows on the local disk (each structure backed up once,
                       untimed; without restic and borg)
  --scale              also the key rows at 2,000, 20,000 and 200,000 files, and 200 small accounts
  --scale-files A,B,C  the sizes of --scale (\`none\`: only the small accounts)
  --accounts N         the number of small accounts of --scale (default 200; 0: none)
  --fixed-cost         only the fixed-cost row (an empty account), without the dataset
  --same-priority      Tidemark's helpers at the tools' priority (queue nice 0, no ionice)
  --catalog            also the catalog rows (1,000 accounts x 30 snapshots, a 100,000-entry folder)
  --json FILE          write every figure as JSON
  --svg FILE           where --scale writes its plot (default docs/benchmarks-scale.svg)
  --no-main            leave out the main rows (with --scale or --catalog: only those)
  --keep               keep the data for inspection
  --help               this text
`;

/** A whole number of at least `min`, or an error naming the option. */
function count(name: string, value: string | undefined, def: number, min: number): number {
  if (value === undefined) return def;
  if (!/^[0-9]+$/.test(value) || Number(value) < min) throw new UsageError(`--${name} wants a whole number of at least ${min}, not ${JSON.stringify(value)}`);
  return Number(value);
}

class UsageError extends Error {}

/** Strict: an unknown option or a missing value is an error, never a silent full run. */
function parseOptions(argv: string[]): Options | null {
  const { values: v } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      files: { type: 'string' }, runs: { type: 'string' }, 'scale-files': { type: 'string' }, accounts: { type: 'string' },
      json: { type: 'string' }, svg: { type: 'string' },
      'no-ssh': { type: 'boolean' }, 'no-ssh-archives': { type: 'boolean' }, 'no-local': { type: 'boolean' }, 'no-peers': { type: 'boolean' }, 'no-restore': { type: 'boolean' }, 'no-main': { type: 'boolean' },
      'restores-only': { type: 'boolean' },
      scale: { type: 'boolean' }, 'fixed-cost': { type: 'boolean' }, 'same-priority': { type: 'boolean' }, catalog: { type: 'boolean' },
      keep: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (v.help) return null;
  const scaleFiles = v['scale-files'] === 'none' ? []
    : (v['scale-files'] ?? '2000,20000,200000').split(',').map((n) => count('scale-files', n, 0, 1));
  return {
    files: count('files', v.files, 20000, 1), runs: count('runs', v.runs, 3, 1), ssh: !v['no-ssh'], sshArchives: !v['no-ssh-archives'], local: !v['no-local'], peers: !v['no-peers'], restore: !v['no-restore'],
    keep: v.keep === true, scale: v.scale === true, scaleFiles, accounts: count('accounts', v.accounts, 200, 0),
    fixedCostOnly: v['fixed-cost'] === true, samePriority: v['same-priority'] === true, catalog: v.catalog === true,
    json: v.json, main: !v['no-main'], svg: v.svg ?? path.join(REPO, 'docs/benchmarks-scale.svg'),
    restoresOnly: v['restores-only'] === true,
  };
}

let parsed: Options | null;
try {
  parsed = parseOptions(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`bench: ${(err as Error).message}\n${USAGE}`);
  process.exit(2);
}
if (parsed === null) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const options: Options = parsed;

function preflight(): void {
  if (process.getuid?.() !== 0) throw new Error('the benchmark creates Linux users: run it as root');
  if (!fs.existsSync(GENERATOR)) throw new Error(`no dataset generator at ${GENERATOR}: set TIDEMARK_BENCH_GENERATOR to make-account.mjs`);
  const missing = ['tar', 'gzip', 'pigz', 'rsync'].filter((t) => spawnSync('which', [t]).status !== 0);
  if (options.peers && !options.restoresOnly) missing.push(...missingPeers());
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
  // --restores-only: the peers' restores need their backups, which it leaves out.
  const peers: Peer[] = options.peers && !options.restoresOnly ? [restic(world.work, account.home), borg(world.work, account.home)] : [];
  results.facts.peers = Object.fromEntries(peers.map((p) => [p.name, { version: p.version, setting: p.setting }]));
  const s: LocalSetup = { world, account, runs: options.runs, peers, results };
  addLocalJobs(s);
  let ssh: SshSide | null = null;
  try {
    if (options.restoresOnly) {
      log('a backup of each structure and a tar, untimed');
      const tarFile = restoreSetup(s);
      log('restores');
      await restores(s, tarFile);
      return;
    }
    if (options.local) { log('first backups'); await firstBackups(s); }
    if (options.ssh) { ssh = await startSsh(s); log('first backups over ssh'); await sshFirst(s, ssh); }
    const changed = mutate(account, 1);
    log(`change: ${changed}`);
    results.facts.change = changed;
    if (options.local) { log('second backups'); await secondBackups(s); }
    if (ssh) { log('second backups over ssh'); await sshSecond(s, ssh); }
    const tarFile = options.local ? (log('archives'), await archives(s, 1)) : null;
    if (options.restore) {
      if (tarFile !== null) { log('restores'); await restores(s, tarFile); }
      if (ssh) { log('restore from ssh'); await sshRestore(s, ssh); }
    }
    // No goal on these: after the rows that have one.
    if (ssh && options.sshArchives) { log('archives over ssh'); await sshArchives(s, ssh); }
    if (options.local) { log('fixed cost'); await fixedCost(s, Math.max(5, options.runs)); }
    const peaks = results.rows.filter((r) => r.name.startsWith('tidemark')).map((r) => r.m.peakKiB);
    if (peaks.length > 0) results.check(`Tidemark's peak memory at ${options.files} files`, Math.max(...peaks) * 1024 / 1e6, 300, 'MB');
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
    for (const r of results.rows.slice(shown)) process.stdout.write(`    ${r.name}: ${r.m.seconds.toFixed(2)} s (${r.m.all.map((x) => x.toFixed(2)).join(' ')})${r.m.cpu?.length ? `, cpu ${r.m.cpu.map((x) => x.toFixed(2)).join(' ')} s` : ''}\n`);
    shown = results.rows.length;
    if (!done) save(true);
    process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${s}\n`);
  };
  const world = createWorld({ samePriority: options.samePriority });
  // Stopped (Ctrl-C, kill): the users and the data go too; the test sshd's watchdog removes its own.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => { process.stdout.write(`bench: ${sig}, cleaning up\n`); world.close(options.keep); process.exit(130); });
  }
  const probes: Record<string, MachineProbe> = {};
  results.facts.machineProbe = probes;
  try {
    probes.start = probeMachine();
    log(`machine: ${describeProbe(probes.start)}`);
    if (options.fixedCostOnly) await fixedCostRow(world, results, log);
    else if (options.main) await mainRows(world, results, log);
    if (options.scale) { log('scale'); await runScale(world, options, results, log); }
    if (options.catalog) { log('catalog'); await runCatalog(world, results, log); }
    probes.end = probeMachine();
    log(`machine: ${describeProbe(probes.end)}`);
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
