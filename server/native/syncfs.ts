import { execFile, execFileSync } from 'node:child_process';
import { nativeAddon } from './addon.js';

interface Addon { syncfs(fd: number): Promise<void>; syncfsSync(fd: number): void }

const addon = nativeAddon<Addon>('syncfs', 'syncfsSync');

/**
 * Flushes the whole filesystem that holds `fd` (syncfs(2)): file contents, inodes and folder
 * entries, with one journal commit. Errors of writes done since `fd` was opened are thrown
 * (open it before writing). Without the addon, coreutils' `sync -f dir` does the same, but
 * only reports errors that happen while it runs.
 */
export async function syncFilesystem(fd: number, dir: string): Promise<void> {
  if (addon) return addon.syncfs(fd);
  await new Promise<void>((resolve, reject) => {
    execFile('sync', ['-f', '--', dir], (err, _out, stderr) => (err ? reject(Object.assign(new Error(`sync -f ${dir}: ${stderr.trim() || err.message}`), { code: 'EIO' })) : resolve()));
  });
}

/** The same, blocking: for the account worker, which has nothing else to do meanwhile. */
export function syncFilesystemSync(fd: number, dir: string): void {
  if (addon) { addon.syncfsSync(fd); return; }
  execFileSync('sync', ['-f', '--', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
}
