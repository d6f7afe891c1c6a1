import type { SyncTarget } from '../../server/destinations/ssh-sync-shell.js';
import { after, before } from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { SshDestination } from '../../server/destinations/ssh.js';
import { startTestSshServer, type TestSshServer } from './sshd.js';

export interface FakeTarServers {
  /** An SSH server whose user may run commands. */
  server: TestSshServer;
  /** One whose user may only use SFTP. */
  sftpOnly: TestSshServer;
  /** A program the SSH user can run in place of tar: says it is `version`, then runs `body`. */
  fakeTar(name: string, body: string, version?: string): string;
}

/**
 * The two SSH servers of the remote-tar tests (started before the file's tests, stopped after)
 * and a folder the SSH user can read for the scripts that play a hostile or failing tar.
 */
export function fakeTarServers(prefix: string): FakeTarServers {
  let scripts = '';
  const servers = {
    fakeTar(name: string, body: string, version = 'tar (GNU tar) 1.34'): string {
      const file = path.join(scripts, name);
      fs.writeFileSync(file, `#!/bin/sh\ncase "$1" in --version) echo '${version}'; exit 0;; esac\n${body}\n`, { mode: 0o755 });
      return file;
    },
  } as FakeTarServers;
  before(async () => {
    servers.server = await startTestSshServer({ allowCommands: true });
    servers.sftpOnly = await startTestSshServer({ allowCommands: false });
    scripts = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    fs.chmodSync(scripts, 0o755);
  });
  after(async () => {
    await servers.server?.stop();
    await servers.sftpOnly?.stop();
    if (scripts) fs.rmSync(scripts, { recursive: true, force: true });
  });
  return servers;
}

/**
 * Runs `fn` with an SSH destination in a new folder of `on` (removed after), its tar program
 * `tar` (null: the server's own), every command it runs or executes recorded in `commands`, and
 * the folders of every `sync -f` request (flush, write-out) in `syncs`.
 */
export async function withDestination(on: TestSshServer, tar: string | null,
  fn: (dest: SshDestination, remote: string, commands: string[], syncs: SyncTarget[][]) => Promise<void>, timeoutMs = 10000): Promise<void> {
  const remote = path.join(on.remoteRoot, `tar-${crypto.randomBytes(3).toString('hex')}`);
  fs.mkdirSync(remote);
  const st = fs.statSync(on.remoteRoot);
  fs.chownSync(remote, st.uid, st.gid);
  const dest = new SshDestination({ host: on.host, port: on.port, username: on.user, privateKey: on.privateKey, path: remote, timeoutMs });
  const d = dest as unknown as { tarProgram: string; run: (c: string) => Promise<unknown>; exec: (c: string) => Promise<unknown> };
  if (tar !== null) d.tarProgram = tar;
  const commands: string[] = [];
  const run = d.run.bind(dest);
  d.run = (c: string) => { commands.push(c); return run(c); };
  const exec = d.exec.bind(dest);
  d.exec = (c: string) => { commands.push(c); return exec(c); };
  const syncs = watchSyncs(dest);
  try {
    await dest.open();
    await fn(dest, remote, commands, syncs);
  } finally {
    await dest.close();
    fs.rmSync(remote, { recursive: true, force: true });
  }
}

/** Records the folders of every `sync -f` request of a destination (flush, write-out), in order. */
export function watchSyncs(dest: SshDestination): SyncTarget[][] {
  const syncs: SyncTarget[][] = [];
  const d = dest as unknown as { syncFolders: (t: SyncTarget[]) => Promise<unknown> };
  const real = d.syncFolders.bind(dest);
  d.syncFolders = (t: SyncTarget[]) => { syncs.push(t); return real(t); };
  return syncs;
}
