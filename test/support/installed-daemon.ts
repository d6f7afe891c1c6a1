import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';

/** Where an installed tree's bridge folder is, relative to its root. */
export const BRIDGE = 'var/run/tidemark-bridge';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The installed daemon of a tree, started as the service would start it; ready once its HTTP
 * port answers and its bridge socket is open to every local user (mode 0666).
 */
export async function startInstalledDaemon(root: string, port: number): Promise<ChildProcess> {
  const daemon = spawn(path.join(root, 'usr/local/bin/tidemark'), ['serve'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  daemon.stderr!.on('data', (d) => { stderr += d; });
  const deadline = Date.now() + 20000;
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/api/v1/health`)).ok && (fs.statSync(path.join(root, BRIDGE, 'bridge.sock')).mode & 0o777) === 0o666) break;
    } catch { /* not up yet */ }
    if (daemon.exitCode !== null || Date.now() > deadline) throw new Error(`the daemon did not start: ${stderr}`);
    await sleep(100);
  }
  return daemon;
}
