/**
 * restic and borg (BorgBackup), each with a local repository, as the benchmark's peers.
 *   restic: always encrypts; its version here (0.14) has no --insecure-no-password, so a
 *           fixed password file; repository format 2 with --compression off (its fastest).
 *   borg:   --encryption none, --compression none (its fastest; lz4 is its default).
 * Each keeps its repository and cache in its own folder, so a state can be saved after the
 * first backup and put back before every timed second backup.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { discard, sh, timed, type Measure } from './measure.js';

export interface Peer {
  name: 'restic' | 'borg';
  version: string;
  setting: string;
  repo: string;
  /** A fresh, empty repository (untimed). */
  init(): void;
  backup(): Promise<Measure>;
  /** Restores the latest backup into `target` (an empty folder). */
  restore(target: string): Promise<Measure>;
  saveState(label: string): void;
  loadState(label: string): void;
  remove(): void;
}

export const PEER_PACKAGES = { restic: 'restic', borg: 'borgbackup' } as const;

export function missingPeers(): string[] {
  return (['restic', 'borg'] as const).filter((t) => spawnSync('which', [t]).status !== 0).map((t) => PEER_PACKAGES[t]);
}

function stateful(dir: string): Pick<Peer, 'saveState' | 'loadState' | 'remove'> {
  return {
    saveState(label) { discard(`${dir}.${label}`); sh(`cp -a ${dir} ${dir}.${label}`); },
    loadState(label) { discard(dir); sh(`cp -a ${dir}.${label} ${dir}`); },
    remove() { for (const n of fs.readdirSync(path.dirname(dir))) if (n === path.basename(dir) || n.startsWith(`${path.basename(dir)}.`)) fs.rmSync(path.join(path.dirname(dir), n), { recursive: true, force: true }); },
  };
}

export function restic(work: string, home: string): Peer {
  const dir = path.join(work, 'peers', 'restic');
  const repo = path.join(dir, 'repo');
  const passwordFile = path.join(work, 'peers', 'restic-password');
  const env = { ...process.env, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD_FILE: passwordFile, RESTIC_CACHE_DIR: path.join(dir, 'cache') };
  return {
    name: 'restic',
    version: sh('restic version').trim(),
    setting: 'local repository, format 2, --compression off, fixed password file (restic always encrypts)',
    repo,
    init() {
      fs.mkdirSync(path.dirname(passwordFile), { recursive: true });
      fs.writeFileSync(passwordFile, 'tidemark-bench\n', { mode: 0o600 });
      discard(dir);
      fs.mkdirSync(dir, { recursive: true });
      sh('restic init --repository-version 2 -q', { env });
    },
    backup: () => timed('restic', ['backup', '-q', '--compression', 'off', '--host', 'bench', home], { env }),
    restore: (target) => timed('restic', ['restore', '-q', 'latest', '--host', 'bench', '--target', target], { env }),
    ...stateful(dir),
  };
}

export function borg(work: string, home: string): Peer {
  const dir = path.join(work, 'peers', 'borg');
  const repo = path.join(dir, 'repo');
  const env = {
    ...process.env, BORG_REPO: repo, BORG_BASE_DIR: path.join(dir, 'base'),
    BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes', BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
  };
  let n = 0;
  let last = '';
  return {
    name: 'borg',
    version: sh('borg --version').trim(),
    setting: 'local repository, --encryption none, --compression none',
    repo,
    init() {
      discard(dir);
      fs.mkdirSync(dir, { recursive: true });
      sh('borg init --encryption none', { env });
    },
    async backup() {
      const name = `b${++n}`;
      const m = await timed('borg', ['create', '--compression', 'none', `::${name}`, '.'], { env, cwd: home });
      last = name;
      return m;
    },
    restore: (target) => timed('borg', ['extract', `::${last}`], { env, cwd: target }),
    ...stateful(dir),
    loadState(label) {
      discard(dir);
      sh(`cp -a ${dir}.${label} ${dir}`);
      last = sh('borg list --short --last 1', { env }).trim();
    },
  };
}
