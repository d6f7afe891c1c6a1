import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';

export interface TestAccount { username: string; home: string; uid: number; gid: number }

/** A directory that account workers (non-root) can traverse, for test homes. */
export function makeHomeRoot(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-homes-'));
  fs.chmodSync(dir, 0o755);
  return dir;
}

/** Creates a real Linux user with its home under `homeRoot`. */
export function createAccount(homeRoot: string, prefix = 'tm'): TestAccount {
  return createNamedAccount(homeRoot, `${prefix}${crypto.randomBytes(3).toString('hex')}`);
}

/** A real Linux user of a name the test chooses (a name reused after a removal, say). */
export function createNamedAccount(homeRoot: string, username: string): TestAccount {
  const home = path.join(homeRoot, username);
  execFileSync('useradd', ['--create-home', '--home-dir', home, '--shell', '/usr/sbin/nologin', '--user-group', username], { stdio: 'pipe' });
  fs.chmodSync(home, 0o711);
  const uid = Number(execFileSync('id', ['-u', username]).toString().trim());
  const gid = Number(execFileSync('id', ['-g', username]).toString().trim());
  return { username, home, uid, gid };
}

export function removeAccount(a: TestAccount): void {
  try { execFileSync('userdel', ['--force', a.username], { stdio: 'pipe' }); } catch { /* already gone */ }
  try { execFileSync('groupdel', [a.username], { stdio: 'pipe' }); } catch { /* removed with the user */ }
  fs.rmSync(a.home, { recursive: true, force: true });
}

/** Runs a shell command as the account (to create files the way the account would). */
export function asAccount(a: TestAccount, script: string): void {
  execFileSync('setpriv', ['--reuid', String(a.uid), '--regid', String(a.gid), '--clear-groups', 'bash', '-c', script], { cwd: a.home, stdio: 'pipe' });
}
