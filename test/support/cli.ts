import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../server/cli/main.js', import.meta.url));

export interface CliResult { code: number; stdout: string; stderr: string; json: any }

const madeDirs: string[] = [];
// A test that forgets its rmSync (or fails before it) must not leave folders in /tmp for CI's next
// run; these folders are made by root, mode 700, so removing them at exit follows nobody's link.
process.on('exit', () => {
  for (const dir of madeDirs) fs.rmSync(dir, { recursive: true, force: true });
});

function madeDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  madeDirs.push(dir);
  return dir;
}

/** A state directory of its own, with the given config.json; removed when the test process exits. */
export function makeDataDir(config: Record<string, unknown>): string {
  const dir = madeDir('tidemark-state-');
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  return dir;
}

/** A Local destination's folder, mode 700; removed when the test process exits. */
export function makeDestinationDir(): string {
  return madeDir('tidemark-dest-');
}

/** Runs the CLI synchronously with --json and parses its one JSON document. */
export function cli(dataDir: string, args: string[]): CliResult {
  const r = spawnSync(process.execPath, [CLI, '--data-dir', dataDir, '--json', ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  let json: unknown = null;
  try { json = JSON.parse(r.stdout); } catch { json = null; }
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, json };
}

export function cliAsync(dataDir: string, args: string[]): { child: ReturnType<typeof spawn>; result: Promise<CliResult> } {
  const child = spawn(process.execPath, [CLI, '--data-dir', dataDir, '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => { stdout += d; });
  child.stderr!.on('data', (d) => { stderr += d; });
  const result = new Promise<CliResult>((resolve) => child.on('close', (code, signal) => {
    let json: unknown = null;
    try { json = JSON.parse(stdout); } catch { json = null; }
    resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr, json });
  }));
  return { child, result };
}

/** Asserts success and returns the JSON document, with the CLI's stderr in the failure message. */
export function ok(r: CliResult): any {
  if (r.code !== 0) throw new Error(`tidemark exited ${r.code}: ${r.stderr || r.stdout}`);
  return r.json;
}

/**
 * One Local destination (a folder of `destDir`), one files-only job and one backup of
 * `account` per structure; returns each structure's snapshot id.
 */
export function backupEachStructure(dataDir: string, destDir: string, account: string, structures: readonly string[]): Record<string, string> {
  const snapshots: Record<string, string> = {};
  for (const st of structures) {
    fs.mkdirSync(path.join(destDir, st), { mode: 0o700 });
    ok(cli(dataDir, ['destination', 'add', '--name', st, '--type', 'local', '--path', path.join(destDir, st)]));
    ok(cli(dataDir, ['job', 'add', '--name', st, '--destination', st, '--structure', st, '--accounts', account, '--items', 'files']));
    snapshots[st] = ok(cli(dataDir, ['backup', '--job', st, '--wait'])).snapshots[0];
  }
  return snapshots;
}
