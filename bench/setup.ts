/**
 * The benchmark's world: a work directory, a real Linux account whose home holds the
 * generated dataset, a Tidemark state directory, and a way to run the CLI on it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { catalogFile, forgetSnapshots, openCatalog } from '../server/engine/catalog/path-catalog.js';
import { addFlushTarget, discard, setTrash, sh, timed, type Measure } from './measure.js';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = path.join(REPO, 'dist/server/cli/main.js');
/** Extra node options for the timed CLI runs only, e.g. `--cpu-prof --cpu-prof-dir=DIR` (NODE_OPTIONS refuses those). */
const TIMED_NODE_ARGS = (process.env.TIDEMARK_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
export const GENERATOR = process.env.TIDEMARK_BENCH_GENERATOR ?? path.resolve(REPO, '../shared/bench/make-account.mjs');

export interface Account { user: string; home: string; uid: number; gid: number }

export interface World {
  work: string;
  homes: string;
  out: string;
  dataDir: string;
  /** Accounts made here, removed by close(). */
  accounts: Account[];
  /** Runs the CLI synchronously (setup, not timed) and returns its stdout. */
  tm(...args: string[]): string;
  /** The CLI as a timed command. */
  tmTimed(...args: string[]): Promise<Measure>;
  addAccount(name: string): Account;
  /** Adds a Local destination in out/NAME and a job of one structure over the given accounts. */
  addLocalJob(name: string, structure: string, accounts: string[]): string;
  close(keep: boolean): void;
}

/**
 * The state's config. samePriority: Tidemark's helpers run at the CPU and disk priority of
 * the tools it is compared with (its default is nice 10, ionice best-effort 7, which on a
 * busy machine yields to everything else).
 */
function benchConfig(homes: string, samePriority: boolean): Record<string, unknown> {
  return {
    panel: 'standalone', homeRoots: [homes], logLevel: 'silent',
    ...(samePriority ? { queue: { maxBackups: 2, maxTasksPerDestination: 2, nice: 0, ioClass: 'none', ioPriority: 4 } } : {}),
  };
}

export function createWorld(opts: { samePriority?: boolean } = {}): World {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-bench-'));
  fs.chmodSync(work, 0o755);
  addFlushTarget(work);
  const homes = path.join(work, 'homes');
  fs.mkdirSync(homes, { mode: 0o755 });
  const out = path.join(work, 'out');
  fs.mkdirSync(out, { mode: 0o755 });
  setTrash(path.join(work, 'trash'));
  const dataDir = path.join(work, 'state');
  fs.mkdirSync(dataDir);
  fs.writeFileSync(path.join(dataDir, 'config.json'), JSON.stringify(benchConfig(homes, opts.samePriority ?? false)));
  const accounts: Account[] = [];
  const tm = (...a: string[]): string => execFileSync(process.execPath, [CLI, '--data-dir', dataDir, ...a], { encoding: 'utf8', maxBuffer: 256 << 20 });
  return {
    work, homes, out, dataDir, accounts, tm,
    tmTimed: (...a) => timed(process.execPath, [...TIMED_NODE_ARGS, CLI, '--data-dir', dataDir, ...a]),
    addAccount(name) {
      const home = path.join(homes, name);
      execFileSync('useradd', ['--create-home', '--skel', '/dev/null', '--home-dir', home, '--shell', '/usr/sbin/nologin', '--user-group', name], { stdio: 'pipe' });
      const a: Account = { user: name, home, uid: Number(sh(`id -u ${name}`).trim()), gid: Number(sh(`id -g ${name}`).trim()) };
      accounts.push(a);
      return a;
    },
    addLocalJob(name, structure, users) {
      const dir = path.join(out, name);
      fs.mkdirSync(dir, { recursive: true });
      tm('destination', 'add', '--name', name, '--type', 'local', '--path', dir);
      tm('job', 'add', '--name', name, '--destination', name, '--structure', structure, '--accounts', users.join(','), '--items', 'files');
      return dir;
    },
    close(keep) {
      for (const a of accounts) {
        // Other jobs on the machine add and remove users too: a locked /etc/passwd (exit 10) is tried again.
        for (let i = 0; i < 20 && spawnSync('userdel', ['--force', a.user], { stdio: 'ignore' }).status === 10; i++) spawnSync('sleep', ['0.2']);
        spawnSync('groupdel', [a.user], { stdio: 'ignore' });
        if (spawnSync('id', [a.user], { stdio: 'ignore' }).status === 0) process.stderr.write(`bench: could not remove the user ${a.user}: userdel --force ${a.user}\n`);
      }
      if (!keep) fs.rmSync(work, { recursive: true, force: true });
      else process.stdout.write(`kept ${work}\n`);
    },
  };
}

/** Fills a home with the shared generator's dataset (owned by the account) and warms the page cache. */
export function generate(a: Account, files: number): string {
  const said = sh(`node ${GENERATOR} ${a.home} --files ${files}`).trim();
  sh(`chown -R ${a.user}:${a.user} ${a.home}`);
  warm(a.home);
  return said;
}

export function mutate(a: Account, percent: number): string {
  const said = sh(`node ${GENERATOR} ${a.home} --mutate ${percent}`).trim();
  sh(`chown -R ${a.user}:${a.user} ${a.home}`);
  warm(a.home);
  return said;
}

// Through a pipe: GNU tar writing to /dev/null itself skips reading the files' content.
export const warm = (dir: string): void => { sh(`tar cf - -C ${dir} . | cat > /dev/null`); };

/** Snapshot ids on a destination, newest first. */
export function snapshotIds(world: World, destination: string): string[] {
  return (JSON.parse(world.tm('--json', 'snapshot', 'list', '--destination', destination)) as { id: string }[]).map((s) => s.id);
}

/**
 * Forgets an account's snapshots on a destination except `keep`: their folders, their rows in
 * the store and in the account's path catalog, as removing them (retention) would, so that a
 * repeated run starts from the same previous snapshot, or none, and does not pay for
 * forgetting the last round's snapshot in its own timing.
 */
export function dropSnapshots(world: World, destination: string, accountDir: string, keep: string[] = []): void {
  if (fs.existsSync(accountDir)) {
    for (const n of fs.readdirSync(accountDir)) if (!keep.includes(n)) discard(path.join(accountDir, n));
  }
  const db = new Database(path.join(world.dataDir, 'tidemark.sqlite'));
  let dropped: string[] = [];
  let destinationId = 0;
  try {
    destinationId = (db.prepare('SELECT id FROM destinations WHERE name = ?').get(destination) as { id: number } | undefined)?.id ?? 0;
    const del = db.prepare('DELETE FROM snapshots WHERE id = ? AND destination_id = ?');
    const ids = (db.prepare('SELECT id FROM snapshots WHERE destination_id = ?').all(destinationId) as { id: string }[]).map((r) => r.id);
    dropped = ids.filter((id) => !keep.includes(id));
    for (const id of dropped) del.run(id, destinationId);
  } finally {
    db.close();
  }
  const file = catalogFile(world.dataDir, destinationId, path.basename(accountDir));
  if (dropped.length === 0 || !fs.existsSync(file)) return;
  const catalog = openCatalog(file);
  try {
    if (catalog) forgetSnapshots(catalog, dropped);
  } finally {
    catalog?.close();
  }
}
