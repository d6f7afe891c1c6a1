/**
 * node dist/bench/frequent-pass.js: what a frequent file backup (a schedule every 5 minutes)
 * costs when nothing changed. Creates N real accounts (tmbenchfp0001…, with a small
 * WordPress-shaped home each), backs them all up once with an incremental job (files only),
 * then times further passes in which nothing changed: wall time, CPU (user and system of the
 * whole process tree, from getrusage of the waited children), block I/O of the processes, the
 * disk's sectors read and written (/proc/diskstats) and what the destination grew by.
 *   --accounts N   accounts (default 1000)
 *   --files N      files per account (default 60)
 *   --passes N     unchanged passes measured (default 2)
 *   --keep         keep the accounts and data (otherwise removed at the end, also on failure)
 * The accounts are real users (created with newusers, removed with userdel); run as root.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name: string, def: number): number => { const i = args.indexOf(`--${name}`); return i < 0 ? def : Number(args[i + 1]); };
const ACCOUNTS = opt('accounts', 1000);
const FILES = opt('files', 60);
const PASSES = opt('passes', 2);
const KEEP = args.includes('--keep');
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const CLI = path.join(REPO, 'dist/server/cli/main.js');
const PREFIX = 'tmbenchfp';

const names = Array.from({ length: ACCOUNTS }, (_, i) => `${PREFIX}${String(i + 1).padStart(4, '0')}`);

/** A small WordPress-shaped home: a few folders, PHP files, uploads. */
function fillHome(home: string, n: number): void {
  const dirs = ['public_html', 'public_html/wp-includes', 'public_html/wp-admin', 'public_html/wp-content/plugins/shop', 'public_html/wp-content/uploads/2026/11'];
  for (const d of dirs) fs.mkdirSync(path.join(home, d), { recursive: true });
  for (let i = 0; i < n; i++) {
    const dir = dirs[i % dirs.length]!;
    const ext = dir.includes('uploads') ? 'jpg' : 'php';
    fs.writeFileSync(path.join(home, dir, `file${i}.${ext}`), `<?php // ${i} ${'x'.repeat(200 + (i * 37) % 4000)}\n`);
  }
}

/** Sectors read and written by the disk holding `dir` (whole-disk counters of /proc/diskstats). */
function diskSectors(dir: string): { read: number; written: number; device: string } {
  const dev = fs.statSync(dir).dev;
  const major = Math.floor(dev / 256) & 0xfff;
  const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
  for (const line of fs.readFileSync('/proc/diskstats', 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (Number(f[0]) === major && Number(f[1]) === minor) return { read: Number(f[5]), written: Number(f[9]), device: f[2]! };
  }
  return { read: 0, written: 0, device: '?' };
}

const duBytes = (dir: string): number => Number(execFileSync('du', ['-sb', dir]).toString().split('\t')[0]);

interface Pass { seconds: number; userCpu: number; sysCpu: number; blockInKiB: number; blockOutKiB: number; maxRssKiB: number; diskReadKiB: number; diskWrittenKiB: number; destGrewKiB: number; accounts: number }

/** One `tidemark backup --job … --wait` under /usr/bin/time (getrusage of the waited tree). */
function pass(dataDir: string, destDir: string, job: string): Pass {
  execFileSync('sync');
  const before = diskSectors(destDir);
  const grownFrom = duBytes(destDir);
  const r = spawnSync('/usr/bin/time', ['-f', 'TIME %e %U %S %I %O %M', process.execPath, CLI, '--data-dir', dataDir, '--json', 'backup', '--job', job, '--wait'], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`backup failed: ${r.stderr.slice(-2000)}`);
  const after = diskSectors(destDir);
  const m = /TIME (\S+) (\S+) (\S+) (\d+) (\d+) (\d+)/.exec(r.stderr);
  if (!m) throw new Error(`no timing in ${r.stderr.slice(-500)}`);
  const results = (JSON.parse(r.stdout) as { results: { status: string }[] }).results;
  const failed = results.filter((x) => x.status !== 'completed');
  if (failed.length) throw new Error(`${failed.length} account backups did not complete: ${JSON.stringify(failed.slice(0, 3))}`);
  return {
    seconds: Number(m[1]), userCpu: Number(m[2]), sysCpu: Number(m[3]), blockInKiB: Number(m[4]) / 2, blockOutKiB: Number(m[5]) / 2, maxRssKiB: Number(m[6]),
    diskReadKiB: (after.read - before.read) / 2, diskWrittenKiB: (after.written - before.written) / 2,
    destGrewKiB: Math.round((duBytes(destDir) - grownFrom) / 1024), accounts: results.length,
  };
}

function cleanup(homeRoot: string, dataDir: string, destDir: string): void {
  for (const n of names) spawnSync('userdel', ['--force', n], { stdio: 'ignore' });
  for (const n of names) spawnSync('groupdel', [n], { stdio: 'ignore' });
  for (const d of [homeRoot, dataDir, destDir]) fs.rmSync(d, { recursive: true, force: true });
}

function main(): void {
  if (process.getuid?.() !== 0) throw new Error('run as root: the bench creates real accounts');
  const existing = execFileSync('getent', ['passwd']).toString().split('\n').filter((l) => l.startsWith(PREFIX));
  if (existing.length) throw new Error(`accounts named ${PREFIX}* exist already (${existing.length}); remove them first`);
  const homeRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-bench-homes-'));
  fs.chmodSync(homeRoot, 0o755);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-bench-state-'));
  const destDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-bench-dest-'));
  try {
    let t = Date.now();
    const lines = names.map((n) => `${n}:!:::bench:${path.join(homeRoot, n)}:/usr/sbin/nologin`).join('\n') + '\n';
    execFileSync('newusers', [], { input: lines, stdio: ['pipe', 'ignore', 'inherit'] });
    for (const n of names) {
      const home = path.join(homeRoot, n);
      fs.mkdirSync(home, { recursive: true });
      fillHome(home, FILES);
      fs.chmodSync(home, 0o711);
    }
    // Each home owned by its account (newusers gave every user a group of its own name).
    for (const n of names) execFileSync('chown', ['-R', `${n}:${n}`, path.join(homeRoot, n)]);
    process.stderr.write(`${ACCOUNTS} accounts with ${FILES} files each created in ${((Date.now() - t) / 1000).toFixed(1)} s\n`);
    fs.writeFileSync(path.join(dataDir, 'config.json'), JSON.stringify({ panel: 'standalone', homeRoots: [homeRoot] }));
    const cli = (a: string[]): void => { execFileSync(process.execPath, [CLI, '--data-dir', dataDir, '--json', ...a], { stdio: ['ignore', 'ignore', 'inherit'] }); };
    cli(['destination', 'add', '--name', 'bench', '--type', 'local', '--path', destDir]);
    cli(['job', 'add', '--name', 'frequent', '--destination', 'bench', '--structure', 'incremental', '--all', '--items', 'files']);
    t = Date.now();
    const first = pass(dataDir, destDir, 'frequent');
    process.stderr.write(`first (full) pass: ${JSON.stringify(first)}\n`);
    const unchanged: Pass[] = [];
    for (let i = 0; i < PASSES; i++) {
      const p = pass(dataDir, destDir, 'frequent');
      unchanged.push(p);
      process.stderr.write(`unchanged pass ${i + 1}: ${JSON.stringify(p)}\n`);
    }
    const report = {
      accounts: ACCOUNTS, filesPerAccount: FILES, cores: os.cpus().length, loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))),
      first, unchanged,
      perAccount: unchanged.map((p) => ({
        ms: Math.round((p.seconds / p.accounts) * 1000), cpuMs: Math.round(((p.userCpu + p.sysCpu) / p.accounts) * 1000),
        diskWrittenKiB: Number((p.diskWrittenKiB / p.accounts).toFixed(1)), destGrewKiB: Number((p.destGrewKiB / p.accounts).toFixed(1)),
      })),
    };
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  } finally {
    if (!KEEP) cleanup(homeRoot, dataDir, destDir);
  }
}

main();
